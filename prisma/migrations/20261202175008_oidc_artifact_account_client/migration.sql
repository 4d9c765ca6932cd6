-- AlterTable
ALTER TABLE "oidc_artifacts" ADD COLUMN     "account_id" TEXT,
ADD COLUMN     "client_id" TEXT;

-- CreateIndex
CREATE INDEX "oidc_artifacts_model_account_id_client_id_idx" ON "oidc_artifacts"("model", "account_id", "client_id");

-- Backfill: artifacts written before this migration carry the ids only in the payload; without
-- this, a person's existing grants would stop counting as consent until they expire.
UPDATE "oidc_artifacts" SET "account_id" = "payload"->>'accountId', "client_id" = "payload"->>'clientId'
WHERE "payload" ? 'accountId' OR "payload" ? 'clientId';
