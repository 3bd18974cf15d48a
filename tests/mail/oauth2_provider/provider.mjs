// The OAuth2 authorization server of the mail tests (tests/mail/oauth2.py): oidc-provider on a loopback port,
// with the client-credentials grant (RFC 6749 §4.4), token introspection (RFC 7662: Dovecot asks it about every
// token), revocation (RFC 7009) and dynamic client registration (RFC 7591: each test registers its own client).
//
//   node provider.mjs PORT SETTINGS.json
//
// SETTINGS.json: {"registration_token": "...", "clients": [{"client_id": ..., "client_secret": ...}]}. A client
// registered with `mailbox` gets access tokens whose introspection names that mailbox as `username` (what Dovecot's
// oauth2 passdb compares with the IMAP user), valid `token_ttl` seconds (600 unless given). Each token issued and
// each grant refused is one line on stdout, by client id (never a secret or a token).
import { readFileSync } from 'node:fs';

import Provider from 'oidc-provider';

const [port, settingsFile] = process.argv.slice(2);
const settings = JSON.parse(readFileSync(settingsFile, 'utf8'));
const clientCredentialsOnly = {
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  token_endpoint_auth_method: 'client_secret_basic',
};

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: settings.clients.map((client) => ({ ...clientCredentialsOnly, ...client })),
  extraClientMetadata: { properties: ['mailbox', 'token_ttl'] },
  features: {
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    registration: { enabled: true, initialAccessToken: settings.registration_token },
    devInteractions: { enabled: false },
  },
  ttl: {
    ClientCredentials: (ctx, token, client) => client.metadata().token_ttl ?? 600,
  },
  async extraTokenClaims(ctx, token) {
    const mailbox = ctx.oidc.client?.metadata().mailbox;
    return mailbox ? { username: mailbox } : undefined;
  },
  cookies: { keys: ['itsm-test-only'] },
});

provider.on('client_credentials.saved', (token) => {
  console.log(`issued ${token.clientId}`);
});
provider.on('grant.error', (ctx, error) => {
  console.log(`refused ${ctx.oidc.client?.clientId ?? '-'}: ${error.error}`);
});
provider.on('server_error', (ctx, error) => {
  console.log(`server error: ${error.stack}`);
});

provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`listening on 127.0.0.1:${port}`);
});
