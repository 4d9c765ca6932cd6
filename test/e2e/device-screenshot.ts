/**
 * Regenerates docs/device.png (not a test): `npx tsx test/e2e/device-screenshot.ts`.
 * A throwaway PGlite server, one device client, the verification_uri page in Debian's
 * chromium at 1280×800 with a code being typed.
 */
import { createTestDatabase, startServer } from '../support/harness.ts';
import { DEVICE_CODE_GRANT } from '../../src/identity/clients/metadata.ts';
import { postForm } from '../oidc/service-fixtures.ts';
import { launchBrowser } from './support.ts';

const db = await createTestDatabase();
const server = await startServer(db);
const browser = await launchBrowser();
try {
  const { client } = await server.keyward.clients.create({
    client_name: 'Living Room TV', grant_types: [DEVICE_CODE_GRANT], token_endpoint_auth_method: 'none', first_party: true,
  });
  const started = await postForm(server.url, '/device/auth', { client_id: client.client_id, scope: 'openid' });
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(started.json!.verification_uri as string);
  await page.getByLabel('Device code').fill(String(started.json!.user_code));
  await page.screenshot({ path: new URL('../../docs/device.png', import.meta.url).pathname });
  // The confirmation page too, for the README.
  await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: 'Continue' }).click()]);
  await page.waitForLoadState('load');
  await page.screenshot({ path: new URL('../../docs/device-confirm.png', import.meta.url).pathname });
} finally {
  await browser.close();
  await server.stop();
  await db.drop();
}
