import type { INestApplication } from '@nestjs/common';
import { StorageService } from '../src/database/storage.service';
import request from 'supertest';
import { bytes } from './helpers/bodies';
import { createTestApp, TEST_HTTP_ADAPTER } from './helpers/test-app';

type Method = 'get' | 'head' | 'post' | 'put' | 'patch' | 'delete' | 'options';
type Probe = [Method, string, Record<string, string>?, string?];

const JSON_TYPE = { 'Content-Type': 'application/json' };
const USER = '{"id":"u1","email":"ada@example.com","full_name":"Ada","age":36}';
const ORIGIN = 'https://app.example.com';

/** Requests whose answers once differed between the adapters, and the everyday ones. */
const PROBES: Probe[] = [
  ['post', '/api/v1/data/users', JSON_TYPE, USER],
  ['get', '/api/v1/data/users/u1'],
  ['head', '/api/v1/data/users/u1'],
  ['get', '/API/V1/data/users/u1/'],
  ['get', '/api/v1/data/users//u1'],
  ['get', '/api/v1/data/users?limit=1'],
  ['get', '/api/v1/data/users/u1', { 'If-None-Match': '*' }],
  ['get', `/api/v1/data/users/${'x'.repeat(300)}`],
  ['get', `/api/v1/data/users/${'x'.repeat(9000)}`],
  ['get', '/api/v1/data/users/%zz'],
  ['get', '/api/v1/data/a%zzb/x%20y?q=%zz'],
  ['get', '/api/v1/data/base/%E0%A4%A'],
  ['get', '/api/v1/data/users/%zz/more'],
  ['get', '/nope/%zz'],
  ['get', '/api/v1/d%61ta/users'],
  ['get', '/api/v1/data/users/a%2Fb'],
  ['post', '/api/v1/data/users', { 'Content-Type': 'text' }, 'hi'],
  ['post', '/api/v1/data/users', { 'Content-Type': ';;;' }, 'hi'],
  ['post', '/api/v1/data/users', {}, 'hi'],
  ['post', '/api/v1/data/users', JSON_TYPE, '{bad'],
  ['post', '/api/v1/data/users', { ...JSON_TYPE, 'Content-Encoding': 'br' }, '{}'],
  ['patch', '/api/v1/data/users/u1', { 'Content-Type': 'application/merge-patch+json' }, '{}'],
  ['delete', '/api/v1/data/users/u1', JSON_TYPE, '{}'],
  ['head', '/api/v1/data/users/u1'],
  ['options', '/api/v1/data/users'],
  ['options', '/api/v1/data/users', { Origin: ORIGIN, 'Access-Control-Request-Method': 'PUT' }],
  ['get', '/api/v1/data/users', { Origin: ORIGIN }],
  ['get', '/health'],
  ['get', '/docs'],
  ['get', '/docs/swagger-ui-init.js'],
  ['get', '/docs/LICENSE'],
  ['get', '/docs/missing.js'],
  ['get', '/docs-yaml'],
  ['head', '/redoc/redoc.standalone.js'],
];

/** Headers that change from one request to the next. */
const VARYING = new Set(['date', 'x-request-id', 'connection', 'keep-alive', 'etag']);

async function answers(adapter: string): Promise<string[]> {
  const app: INestApplication = await createTestApp({
    env: { HTTP_ADAPTER: adapter, CORS_ORIGINS: ORIGIN, BODY_LIMIT: '1kb' },
  });
  try {
    const lines: string[] = [];
    // Sequence numbers start from the clock: shown relative to where this app's log began.
    const start = app.get(StorageService).appliedSeq;
    for (const [method, url, headers = {}, body] of PROBES) {
      let call = request(app.getHttpServer())[method](url).set(headers);
      if (body !== undefined) call = call.send(body);
      const res = await bytes(call);
      const shown = Object.entries(res.headers)
        .filter(([name]) => !VARYING.has(name))
        .map(([name, value]) =>
          name === 'x-memdb-seq'
            ? `${name}: start + ${Number(value) - start}`
            : `${name}: ${String(value)}`,
        )
        .sort();
      const text = (res.body as Buffer)
        .toString()
        .replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, '<time>')
        .slice(0, 500);
      expect(res.headers['x-request-id']).toBeDefined();
      lines.push(
        [`${method.toUpperCase()} ${url.slice(0, 60)} ${res.status}`, ...shown, text].join('\n'),
      );
    }
    return lines;
  } finally {
    await app.close();
  }
}

// Compares the two adapters with each other, so it runs once, in the express project: in the
// e2e-fastify project it would repeat the same comparison.
(TEST_HTTP_ADAPTER === 'express' ? describe : describe.skip)('Express and Fastify', () => {
  it('answer every request alike: status, headers and body', async () => {
    const express = await answers('express');
    const fastify = await answers('fastify');

    for (let i = 0; i < PROBES.length; i++) expect(fastify[i]).toBe(express[i]);
  });
});
