import { PrismaAdapter } from './oidc-artifacts.ts';
import { ReplayDetectionAdapter } from './replay-detection.ts';
import type { PrismaClient } from './store.ts';

/** oidc-provider's `adapter` option for the models it keeps in `oidc_artifacts` (every one but Client). */
export type ArtifactAdapters = (model: string) => PrismaAdapter | ReplayDetectionAdapter;

export function oidcArtifactAdapters(prisma: PrismaClient, now: () => Date): ArtifactAdapters {
  return (model) => (model === 'ReplayDetection' ? new ReplayDetectionAdapter(prisma, now) : new PrismaAdapter(prisma, model, now));
}
