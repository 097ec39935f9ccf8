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
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const server = createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = config.issuer ?? `http://127.0.0.1:${port}`;
  const resources = config.resources;
  const provider = new Provider(issuer, {
    clients: config.clients,
    jwks: config.jwks,
    cookies: { keys: ['sceau-test-only-cookie-key'] },
    scopes: ['seal'],
    clientBasedCORS: () => false,
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: false },
      revocation: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => Object.keys(resources)[0],
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
  server.on('request', provider.callback());
  process.stdout.write(`listening ${port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
