import { createTestDatabase, startServer } from '../support/harness.ts';
import { authRequest, createPublicClient, createUser, launchBrowser, rp, startCallback } from './support.ts';
const db = await createTestDatabase();
const server = await startServer(db);
const browser = await launchBrowser();
const callback = await startCallback();
const clientId = await createPublicClient(server.keyward, callback, { name: 'Orders Web' });
const third = await createPublicClient(server.keyward, callback, { name: 'Acme Reports', firstParty: false });
const user = await createUser(server.keyward, { roles: ['staff'] });
const config = await rp(server.url, clientId);
for (const [name, scheme, w, h] of [['login', 'light', 1280, 800], ['login-dark', 'dark', 1280, 800], ['login-mobile', 'light', 390, 760]] as const) {
  const ctx = await browser.newContext({ viewport: { width: w, height: h }, colorScheme: scheme });
  const page = await ctx.newPage();
  await page.goto((await authRequest(config, callback)).url.href);
  await page.screenshot({ path: `/tmp/shot/${name}.png` });
  if (name === 'login') {
    await page.getByLabel('Username').fill(user.username);
    await page.getByLabel('Password').fill('wrong');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForLoadState('load');
    await page.screenshot({ path: `/tmp/shot/login-error.png` });
    const c3 = await rp(server.url, third);
    await page.goto((await authRequest(c3, callback, { prompt: 'login consent' })).url.href);
    await page.getByLabel('Username').fill(user.username);
    await page.getByLabel('Password').fill(user.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForLoadState('load');
    await page.screenshot({ path: `/tmp/shot/consent.png` });
    await page.goto(`${server.url}/session/end?client_id=${clientId}`);
    await page.screenshot({ path: `/tmp/shot/logout.png` });
    await page.goto(`${server.url}/auth?client_id=${clientId}&response_type=code&redirect_uri=https://evil.example/cb&scope=openid`);
    await page.screenshot({ path: `/tmp/shot/error.png` });
  }
  await ctx.close();
}
await browser.close(); await callback.close(); await server.stop(); await db.drop();
