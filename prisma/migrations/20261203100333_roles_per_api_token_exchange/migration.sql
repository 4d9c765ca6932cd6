-- AlterTable
ALTER TABLE "roles" ADD COLUMN     "resource" TEXT;

-- CreateTable
CREATE TABLE "token_exchanges" (
    "jti" TEXT NOT NULL,
    "subject_jtis" TEXT[],
    "grant_id" TEXT,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "token_exchanges_pkey" PRIMARY KEY ("jti")
);

-- CreateIndex
CREATE INDEX "token_exchanges_expires_at_idx" ON "token_exchanges"("expires_at");

-- CreateIndex
CREATE INDEX "roles_resource_idx" ON "roles"("resource");

-- AddForeignKey
ALTER TABLE "roles" ADD CONSTRAINT "roles_resource_fkey" FOREIGN KEY ("resource") REFERENCES "resource_servers"("identifier") ON DELETE CASCADE ON UPDATE CASCADE;
