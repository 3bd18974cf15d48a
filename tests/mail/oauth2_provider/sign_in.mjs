// The OpenID Connect provider of the single sign-on tests (tests/auth/oidc_provider.py): oidc-provider on a loopback
// port with the authorization code flow, PKCE (S256) required, discovery, and RP-initiated logout. It shares this
// folder's node_modules (package-lock.json) with the mail tests' provider.mjs.
//
//   node sign_in.mjs PORT SETTINGS.json ACCOUNTS.json
//
// SETTINGS.json: {"clients": [{"client_id", "client_secret", "redirect_uris", "post_logout_redirect_uris"}]}.
// ACCOUNTS.json: {"<account>": {claims}}, read again at every sign-in, so a test changes a user's claims by
// rewriting it. There is no login form: GET /interaction/<uid>?account=<account> signs that account in and grants
// what the client asked for. Each sign-in and each session ended is one line on stdout.
import { readFileSync } from 'node:fs';

import Provider from 'oidc-provider';

const [port, settingsFile, accountsFile] = process.argv.slice(2);
const settings = JSON.parse(readFileSync(settingsFile, 'utf8'));

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: settings.clients.map((client) => ({
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_post',
    ...client,
  })),
  pkce: { required: () => true, methods: ['S256'] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['preferred_username', 'given_name', 'family_name', 'name'],
    groups: ['groups'],
  },
  conformIdTokenClaims: false, // the scopes' claims in the ID token too
  async findAccount(ctx, id) {
    const accounts = JSON.parse(readFileSync(accountsFile, 'utf8'));
    if (!(id in accounts)) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, ...accounts[id] }) };
  },
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: {
      enabled: true,
      logoutSource: async (ctx, form) => {
        // No confirmation page: end the session at once (the form posts itself).
        ctx.body = `<html><body onload="document.forms[0].submit()">${form.replace('</form>', '<input type="hidden" name="logout" value="yes"/></form>')}</body></html>`;
      },
    },
  },
  cookies: { keys: ['itsm-test-only'] },
});

provider.use(async (ctx, next) => {
  const match = ctx.path.match(/^\/interaction\/([^/]+)$/);
  if (!match || ctx.method !== 'GET') return next();
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  if (details.prompt.name === 'login') {
    console.log(`signed in ${ctx.query.account}`);
    return provider.interactionFinished(ctx.req, ctx.res, { login: { accountId: String(ctx.query.account) } });
  }
  const grant = new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
  grant.addOIDCScope(details.params.scope);
  const grantId = await grant.save();
  return provider.interactionFinished(ctx.req, ctx.res, { consent: { grantId } }, { mergeWithLastSubmission: true });
});

provider.on('end_session.success', () => console.log('session ended'));
provider.on('grant.error', (ctx, error) => console.log(`refused: ${error.error} ${error.error_description ?? ''}`));
provider.on('authorization.error', (ctx, error) => console.log(`refused: ${error.error} ${error.error_description ?? ''}`));
provider.on('server_error', (ctx, error) => console.log(`server error: ${error.stack}`));

provider.listen(Number(port), '127.0.0.1', () => console.log(`listening on 127.0.0.1:${port}`));
