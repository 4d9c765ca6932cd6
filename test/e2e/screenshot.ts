/**
 * Regenerates docs/login.png (not a test): `npx tsx test/e2e/screenshot.ts`.
 * A throwaway PGlite server, one first-party client, Debian's chromium at 1280×800.
 */
import { createTestDatabase, startServer } from '../support/harness.ts';
import { authRequest, createPublicClient, launchBrowser, rp, startCallback } from './support.ts';

const db = await createTestDatabase();
const server = await startServer(db);
const browser = await launchBrowser();
const callback = await startCallback();
try {
  const config = await rp(server.url, await createPublicClient(server.keyward, callback, { name: 'Orders Web' }));
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto((await authRequest(config, callback)).url.href);
  await page.screenshot({ path: new URL('../../docs/login.png', import.meta.url).pathname });
} finally {
  await browser.close();
  await callback.close();
  await server.stop();
  await db.drop();
}
