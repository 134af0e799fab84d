// A real OpenID provider for Rempart's sign-in tests: the certified `oidc-provider` package
// (installed by scripts/test into target/oidc-provider), with a configuration of our own.
//
// Environment:
//   OIDC_MODULE   path to oidc-provider's lib/index.js
//   PORT          port on 127.0.0.1 (the issuer is http://127.0.0.1:PORT)
//   REDIRECT_URI  Rempart's callback; POST_LOGOUT  where to return after sign-out
//   OIDC_KEYS     kid[,kid…]: one RSA signing key is made per kid (a new kid is a key rotation)
//   OIDC_USERS    JSON {"alice": ["soc-analysts"], …}: accounts and their groups
//   ID_TOKEN_TTL  (optional) ID token lifetime in seconds
//
// Test hooks (plain HTTP on the same port): POST /test/disable/NAME makes an account unknown,
// so its refresh tokens are refused from then on; POST /test/groups/NAME?g=a,b changes groups.
import { generateKeyPairSync } from 'node:crypto';
import { pathToFileURL } from 'node:url';

const { default: Provider } = await import(pathToFileURL(process.env.OIDC_MODULE).href);

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const users = JSON.parse(process.env.OIDC_USERS || '{}');
const keys = (process.env.OIDC_KEYS || 'k1').split(',').map((kid) => {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' };
});

const configuration = {
  clients: [{
    client_id: 'rempart',
    client_secret: 'rempart-test-secret',
    redirect_uris: [process.env.REDIRECT_URI],
    post_logout_redirect_uris: [process.env.POST_LOGOUT],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'RS256',
  }],
  jwks: { keys },
  scopes: ['openid', 'offline_access', 'profile', 'groups'],
  claims: { openid: ['sub'], profile: ['name', 'preferred_username'], groups: ['groups'] },
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
  issueRefreshToken: async () => true,
  ttl: {
    IdToken: Number(process.env.ID_TOKEN_TTL || 3600),
    AccessToken: 3600,
    RefreshToken: 86400,
    Grant: 86400,
    Session: 86400,
    Interaction: 600,
  },
  cookies: { keys: ['rempart-test-cookie-key'] },
  findAccount: async (ctx, id) => {
    if (!(id in users)) return undefined;
    return {
      accountId: id,
      claims: async () => ({ sub: id, preferred_username: id, name: id, groups: users[id] }),
    };
  },
};
const provider = new Provider(issuer, configuration);
provider.use(async (ctx, next) => {
  const disable = ctx.path.match(/^\/test\/disable\/([^/]+)$/);
  const groups = ctx.path.match(/^\/test\/groups\/([^/]+)$/);
  if (ctx.method === 'POST' && disable) {
    delete users[disable[1]];
    ctx.body = 'disabled';
    return;
  }
  if (ctx.method === 'POST' && groups) {
    users[groups[1]] = (ctx.query.g || '').split(',').filter(Boolean);
    ctx.body = 'changed';
    return;
  }
  await next();
});

provider.listen(port, '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});
