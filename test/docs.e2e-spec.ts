import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { createTestApp } from './helpers/test-app';

describe('OpenAPI and docs', () => {
  let app: INestApplication;
  let http: ReturnType<INestApplication['getHttpServer']>;

  beforeAll(async () => {
    app = await createTestApp();
    http = app.getHttpServer();
  });

  afterAll(() => app.close());

  it('serves the OpenAPI document at /docs-json with every route', async () => {
    const { body } = await request(http).get('/docs-json').expect(200);

    expect(body.openapi).toMatch(/^3\./);
    expect(Object.keys(body.paths).sort()).toEqual([
      '/api/v1/admin/backup',
      '/api/v1/admin/compact',
      '/api/v1/admin/restore',
      '/api/v1/changes',
      '/api/v1/changes/tickets',
      '/api/v1/cluster',
      '/api/v1/data/{table}',
      '/api/v1/data/{table}/{id}',
      '/api/v1/join/{left}/{right}/{key}',
      '/api/v1/tables',
      '/api/v1/tables/{table}',
      '/api/v1/tables/{table}/indexes',
      '/api/v1/tables/{table}/indexes/{field}',
      '/health',
      '/health/ready',
    ]);
    expect(Object.keys(body.paths['/api/v1/data/{table}/{id}']).sort()).toEqual([
      'delete',
      'get',
      'patch',
      'put',
    ]);
  });

  it('documents both row formats of lists and joins, and limit=all', async () => {
    const { body } = await request(http).get('/docs-json').expect(200);
    for (const operation of [
      body.paths['/api/v1/join/{left}/{right}/{key}'].get,
      body.paths['/api/v1/data/{table}'].get,
    ]) {
      expect(Object.keys(operation.responses['200'].content).sort()).toEqual([
        'application/json',
        'application/x-ndjson',
      ]);
      const limit = operation.parameters.find((p: { name: string }) => p.name === 'limit');
      expect(limit.schema.oneOf).toContainEqual({ type: 'string', enum: ['all'] });
    }
  });

  it('documents parameters, DTOs and problem responses', async () => {
    const { body } = await request(http).get('/docs-json').expect(200);
    const join = body.paths['/api/v1/join/{left}/{right}/{key}'].get;
    const create = body.paths['/api/v1/data/{table}'].post;

    expect(join.parameters.map((p: { name: string }) => p.name).sort()).toEqual(
      [
        'X-Request-Id',
        'count',
        'cursor',
        'fields',
        'filters',
        'key',
        'left',
        'leftKey',
        'limit',
        'offset',
        'right',
        'rightKey',
        'sort',
        'type',
      ].sort(),
    );
    for (const parameter of join.parameters.filter((p: { in: string }) => p.in === 'query')) {
      expect({
        name: parameter.name,
        documented: Boolean(parameter.description || parameter.example),
      }).toEqual({
        name: parameter.name,
        documented: true,
      });
    }
    expect(Object.keys(body.components.schemas)).toEqual(
      expect.arrayContaining([
        'UserDto',
        'OrderDto',
        'RecordDto',
        'ProblemDetailsDto',
        'JoinRowDto',
      ]),
    );
    expect(body.components.schemas.UserDto.required.sort()).toEqual(['age', 'email', 'full_name']);
    expect(create.responses['409'].content['application/problem+json']).toBeDefined();
    expect(create.responses['201'].headers.Location).toBeDefined();
    expect(create.responses['429'].headers['Retry-After']).toBeDefined();
  });

  it('documents X-Request-Id, rate-limit headers, 415 and 500 on every operation that has them', async () => {
    const { body } = await request(http).get('/docs-json').expect(200);

    for (const [path, item] of Object.entries(
      body.paths as Record<
        string,
        Record<
          string,
          {
            parameters: { name: string }[];
            responses: Record<string, { headers: Record<string, unknown> }>;
          }
        >
      >,
    )) {
      for (const [method, operation] of Object.entries(item)) {
        expect({
          path,
          method,
          header: operation.parameters.some((p) => p.name === 'X-Request-Id'),
        }).toEqual({ path, method, header: true });
        for (const [status, response] of Object.entries(operation.responses)) {
          expect({ path, method, status, id: Boolean(response.headers?.['X-Request-Id']) }).toEqual(
            { path, method, status, id: true },
          );
        }
        if (path.startsWith('/api/')) expect(operation.responses['500']).toBeDefined();
        if (path.startsWith('/api/') && ['post', 'put', 'patch'].includes(method))
          expect(operation.responses['415']).toBeDefined();
      }
    }
    expect(
      body.paths['/api/v1/data/{table}/{id}'].get.responses['200'].headers['X-RateLimit-Remaining'],
    ).toBeDefined();
    expect(body.components.schemas.UserDto).toMatchObject({
      additionalProperties: false,
      properties: { id: { type: 'string' } },
    });
    expect(
      body.paths['/health'].get.responses['200'].content['application/json'].schema.properties
        .version,
    ).toBeDefined();
  });

  it('serves Swagger UI at /docs with local assets', async () => {
    const res = await request(http).get('/docs/').expect(200);

    expect(res.text).toContain('swagger-ui');
    expect(res.text).not.toMatch(/https?:\/\/(?!localhost)[^"']*\.(js|css)/);
    await request(http)
      .get('/docs/swagger-ui-bundle.js')
      .expect(200)
      .expect('content-type', /javascript/);
  });

  it('serves ReDoc at /redoc from the npm package, no CDN', async () => {
    const page = await request(http)
      .get('/redoc')
      .expect(200)
      .expect('content-type', /text\/html/);

    expect(page.text).toContain('spec-url="/docs-json"');
    expect(page.text).toContain('src="/redoc/redoc.standalone.js"');
    expect(page.text).not.toMatch(/https?:\/\//);
    const bundle = await request(http)
      .get('/redoc/redoc.standalone.js')
      .expect(200)
      .expect('content-type', /javascript/);
    expect(bundle.text.length).toBeGreaterThan(100_000);
  });
});
