import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import helmet from 'helmet';
import { securityHeaders, setHeaders } from './security-headers';

const OPTIONS = {
  contentSecurityPolicy: { directives: { defaultSrc: ["'self'"], upgradeInsecureRequests: null } },
};

async function headersOf(server: Server): Promise<Record<string, string>> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    const out: Record<string, string> = {};
    res.headers.forEach((value, name) => {
      if (name !== 'date' && name !== 'connection' && name !== 'keep-alive') out[name] = value;
    });
    return out;
  } finally {
    server.close();
  }
}

describe('securityHeaders', () => {
  it('sets exactly the headers helmet sets, with the same values', async () => {
    const viaHelmet = await headersOf(
      createServer((req, res) => helmet(OPTIONS)(req, res, () => res.end())),
    );
    const list = securityHeaders(OPTIONS);
    const viaList = await headersOf(
      createServer((_req, res) => {
        setHeaders(res, list);
        res.end();
      }),
    );
    expect(viaList).toEqual(viaHelmet);
    expect(viaHelmet['content-security-policy']).toContain("default-src 'self'");
    expect(Object.keys(viaHelmet).length).toBeGreaterThan(10);
  });
});
