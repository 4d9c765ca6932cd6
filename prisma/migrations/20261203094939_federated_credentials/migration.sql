-- CreateTable
CREATE TABLE "federated_credentials" (
    "id" UUID NOT NULL,
    "client_id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "issuer" TEXT NOT NULL,
    "jwks_uri" TEXT,
    "jwks" JSONB,
    "subject" TEXT,
    "subject_pattern" TEXT,
    "audience" TEXT,
    "claims" JSONB,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "federated_credentials_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "federated_credentials_issuer_idx" ON "federated_credentials"("issuer");

-- CreateIndex
CREATE UNIQUE INDEX "federated_credentials_client_id_name_key" ON "federated_credentials"("client_id", "name");

-- AddForeignKey
ALTER TABLE "federated_credentials" ADD CONSTRAINT "federated_credentials_client_id_fkey" FOREIGN KEY ("client_id") REFERENCES "clients"("client_id") ON DELETE CASCADE ON UPDATE CASCADE;

-- A rule pins its subject: exactly one of subject and subject_pattern.
ALTER TABLE "federated_credentials" ADD CONSTRAINT "federated_credentials_one_subject" CHECK (("subject" IS NULL) <> ("subject_pattern" IS NULL));
