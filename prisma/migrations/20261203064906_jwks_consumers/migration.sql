-- CreateTable
CREATE TABLE "jwks_consumers" (
    "address" TEXT NOT NULL,
    "user_agent" TEXT NOT NULL,
    "first_seen_at" TIMESTAMPTZ(3) NOT NULL,
    "last_fetch_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "jwks_consumers_pkey" PRIMARY KEY ("address","user_agent")
);

-- CreateIndex
CREATE INDEX "jwks_consumers_last_fetch_at_idx" ON "jwks_consumers"("last_fetch_at");
