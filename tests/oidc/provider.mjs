// A real OpenID provider (the `oidc-provider` package from npm) for the browser tests.
//
// Usage: node provider.mjs <config.json>. The file names the port, the clients (Lanyard) and the
// accounts: a login name and the claims its ID token carries (email, email_verified, tid, hd, ...).
// The provider's own development sign-in pages are used ("Enter any login"); consent is granted
// without asking, as a school's tenant admin would for its own app. Prints "ready <issuer>" once
// listening.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const { default: Provider } = await import(
  pathToFileURL(join(here, '..', 'browser', 'node_modules', 'oidc-provider', 'lib', 'index.js')).href
);

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const issuer = `http://127.0.0.1:${config.port}`;
const accounts = config.accounts;
const customClaims = ['tid', 'hd', 'xms_edov'];

const provider = new Provider(issuer, {
  clients: config.clients,
  claims: {
    openid: ['sub', ...customClaims],
    email: ['email', 'email_verified'],
    profile: ['name'],
  },
  // Put the requested claims in the ID token itself, as Entra ID and Google do.
  conformIdTokenClaims: false,
  cookies: { keys: ['lanyard-browser-test-cookie-key'] },
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => true },
  async findAccount(ctx, id) {
    const claims = accounts[id];
    if (!claims) return undefined;
    return {
      accountId: id,
      async claims() {
        const out = { sub: id };
        for (const [key, value] of Object.entries(claims)) {
          if (value !== null) out[key] = value;
        }
        return out;
      },
    };
  },
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid email profile');
    grant.addOIDCClaims(customClaims);
    await grant.save();
    return grant;
  },
});
provider.on('server_error', (ctx, error) => console.error('server_error', error));

provider.listen(config.port, '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});
