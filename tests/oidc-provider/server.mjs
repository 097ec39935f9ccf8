// A real OpenID provider for sceau's tests: node's oidc-provider, on loopback,
// issuing RFC 9068 JWT access tokens (resource indicators) by the
// client_credentials grant, certificate-bound (RFC 8705) when the client asks
// for it. The test gives the configuration as a JSON file:
//   { "issuer": optional, "jwks": { "keys": [private JWKs] }, "clients": [...],
//     "resources": { "<resource URI>": { "ttl": seconds, "alg": "ES256" } } }
// and reads "listening <port>" on stdout. Clients may carry
// `extra_token_claims` (e.g. amr, acr, sceau_roles) that their tokens include.
// The client certificate for binding comes in the `x-client-certificate`
// header (URL-encoded PEM), as a TLS-terminating proxy would pass it.
// With "people": { "<login>": { "name": …, "sceau_roles": [...] } } it also
// signs people in by the authorization code flow, through its own login
// page (a login and the level of assurance, as an eID's page would ask),
// with acr values urn:sceau:test:loa:{low,substantial,high}; consent is
// given at once. RP-initiated logout is its default page.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

const LEVELS = ['low', 'substantial', 'high'].map((l) => `urn:sceau:test:loa:${l}`);
const escapeHtml = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(uid, params) {
  const asked = String(params.acr_values ?? '').split(' ').filter(Boolean);
  const options = LEVELS.map((acr) => {
    const selected = asked[0] === acr ? ' selected' : '';
    return `<option value="${acr}"${selected}>${acr}</option>`;
  }).join('');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Test identity provider</title></head>
<body><main><h1>Test identity provider</h1>
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
<p><label for="login">Login</label> <input id="login" name="login" autocomplete="username" required></p>
<p><label for="acr">Level of assurance</label> <select id="acr" name="acr">${options}</select></p>
<p><label for="age">Authenticated this many seconds ago</label> <input id="age" name="age" value="0"></p>
<p><button type="submit">Sign in</button></p>
</form></main></body></html>`;
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 10000) throw new Error('form too large');
  }
  return Object.fromEntries(new URLSearchParams(body));
}

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const server = createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = config.issuer ?? `http://127.0.0.1:${port}`;
  const resources = config.resources ?? {};
  const people = config.people ?? {};
  const provider = new Provider(issuer, {
    clients: config.clients,
    acrValues: LEVELS,
    claims: { openid: ['sub'], profile: ['name', 'sceau_roles'] },
    conformIdTokenClaims: false,
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(ctx, id) {
      if (!people[id]) return undefined;
      return { accountId: id, claims: async () => ({ sub: id, ...people[id] }) };
    },
    jwks: config.jwks,
    cookies: { keys: ['sceau-test-only-cookie-key'] },
    scopes: ['seal'],
    clientBasedCORS: () => false,
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      // Its own sign-out page: the default one loads fonts from another host.
      rpInitiatedLogout: {
        enabled: true,
        async logoutSource(ctx, form) {
          ctx.body = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign out</title></head>
<body><main><h1>Sign out of the test identity provider?</h1>${form}
<button type="submit" form="op.logoutForm" name="logout" value="yes">Yes, sign me out</button></main></body></html>`;
        },
      },
      introspection: { enabled: false },
      revocation: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => Object.keys(resources)[0] ?? undefined,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resource) => {
          const info = resources[resource];
          if (!info) throw new Error(`unknown resource ${resource}`);
          return {
            scope: 'seal',
            audience: resource,
            accessTokenFormat: 'jwt',
            accessTokenTTL: info.ttl ?? 300,
            jwt: { sign: { alg: info.alg ?? 'ES256' } },
          };
        },
      },
      mTLS: {
        enabled: true,
        certificateBoundAccessTokens: true,
        getCertificate(ctx) {
          const pem = ctx.get('x-client-certificate');
          return pem ? decodeURIComponent(pem) : undefined;
        },
      },
    },
    extraClientMetadata: { properties: ['extra_token_claims'] },
    async extraTokenClaims(ctx, token) {
      const client = await ctx.oidc.provider.Client.find(token.clientId);
      return client?.extra_token_claims ?? undefined;
    },
  });
  provider.proxy = true;
  const callback = provider.callback();
  server.on('request', async (req, res) => {
    const match = /^\/interaction\/([^/?]+)(\/login)?/.exec(req.url);
    if (!match) return callback(req, res);
    try {
      const interaction = await provider.interactionDetails(req, res);
      if (req.method === 'POST' && match[2]) {
        const form = await readForm(req);
        if (!people[form.login] || !LEVELS.includes(form.acr)) {
          res.writeHead(400, { 'content-type': 'text/plain' });
          return res.end('unknown login or level');
        }
        const age = Math.max(0, Number.parseInt(form.age ?? '0', 10) || 0);
        return await provider.interactionFinished(req, res, {
          login: { accountId: form.login, acr: form.acr, amr: ['pwd', 'otp'], ts: Math.floor(Date.now() / 1000) - age },
        }, { mergeWithLastSubmission: false });
      }
      if (interaction.prompt.name === 'login') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        return res.end(loginPage(interaction.uid, interaction.params));
      }
      const { details } = interaction.prompt;
      const grant = interaction.grantId
        ? await provider.Grant.find(interaction.grantId)
        : new provider.Grant({ accountId: interaction.session.accountId, clientId: interaction.params.client_id });
      if (details.missingOIDCScope) grant.addOIDCScope(details.missingOIDCScope.join(' '));
      if (details.missingOIDCClaims) grant.addOIDCClaims(details.missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(details.missingResourceScopes ?? {})) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
      const grantId = await grant.save();
      return await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    } catch (error) {
      res.writeHead(400, { 'content-type': 'text/plain' });
      return res.end(String(error.message ?? error));
    }
  });
  process.stdout.write(`listening ${port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
