import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import { APP_INFO } from '../config/app-info';
import { RECORD_ID_PATTERN } from '../database/names';

export const SWAGGER_UI_PATH = 'docs';
export const OPENAPI_JSON_PATH = '/docs-json';

export function createOpenApiDocument(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('memdb')
    .setDescription(
      'An in-memory database over HTTP: tables of JSON records with CRUD and a hash join. ' +
        'Errors are RFC 9457 problem details (application/problem+json). ' +
        'Every response carries X-Request-Id. ReDoc: /redoc.',
    )
    .setVersion(APP_INFO.version)
    .build();
  return addCrossCuttingDocs(SwaggerModule.createDocument(app, config));
}

type Operation = {
  parameters?: { name: string; in: string }[];
  responses: Record<
    string,
    { description?: string; headers?: Record<string, unknown>; content?: unknown }
  >;
};

const REQUEST_ID = {
  description:
    'The request id: the client X-Request-Id when plain (1–128 of A-Z a-z 0-9 . _ : / + = -), else a UUID',
  schema: { type: 'string' },
};
const RATE_LIMIT_HEADERS = {
  'X-RateLimit-Limit': {
    description: 'Requests allowed per window (THROTTLE_LIMIT)',
    schema: { type: 'integer' },
  },
  'X-RateLimit-Remaining': {
    description: 'Requests left in the window',
    schema: { type: 'integer' },
  },
  'X-RateLimit-Reset': {
    description: 'Seconds until the window resets',
    schema: { type: 'integer' },
  },
};
const PROBLEM = {
  'application/problem+json': { schema: { $ref: '#/components/schemas/ProblemDetailsDto' } },
};

/** Health bodies carry the app version on top (see withVersion). */
function addVersionProperty(content: unknown): void {
  const schema = (
    content as
      { 'application/json'?: { schema?: { properties?: Record<string, unknown> } } } | undefined
  )?.['application/json']?.schema;
  if (schema?.properties) schema.properties.version = { type: 'string', example: APP_INFO.version };
}

/**
 * What every operation shares, added in one place rather than on every handler: the
 * X-Request-Id request and response header, rate-limit headers on throttled routes, 415 on
 * bodies, 500 for unexpected faults; and the typed DTOs' closed shape.
 */
function addCrossCuttingDocs(document: OpenAPIObject): OpenAPIObject {
  for (const [path, item] of Object.entries(document.paths)) {
    for (const [method, value] of Object.entries(item)) {
      if (typeof value !== 'object' || value === null || !('responses' in value)) continue;
      const operation = value as Operation;
      operation.parameters ??= [];
      if (!operation.parameters.some((p) => p.name === 'X-Request-Id')) {
        operation.parameters.push({
          name: 'X-Request-Id',
          in: 'header',
          required: false,
          ...REQUEST_ID,
        } as never);
      }
      const api = path.startsWith('/api/');
      if (api && ['post', 'put', 'patch'].includes(method)) {
        operation.responses['415'] ??= {
          description: 'Unsupported Media Type (charset or encoding)',
          content: PROBLEM,
        };
      }
      if (api)
        operation.responses['500'] ??= {
          description: 'Unexpected server fault (a bug; logged)',
          content: PROBLEM,
        };
      for (const [status, response] of Object.entries(operation.responses)) {
        if (path.startsWith('/health')) addVersionProperty(response.content);
        response.headers = {
          ...response.headers,
          'X-Request-Id': REQUEST_ID,
          ...(api && status !== '429' ? RATE_LIMIT_HEADERS : {}),
        };
      }
    }
  }
  const schemas = document.components?.schemas ?? {};
  for (const name of ['UserDto', 'OrderDto']) {
    const schema = schemas[name] as
      { additionalProperties?: boolean; properties?: Record<string, unknown> } | undefined;
    if (schema === undefined) continue;
    schema.additionalProperties = false;
    schema.properties = {
      id: {
        type: 'string',
        pattern: RECORD_ID_PATTERN.source,
        description: 'Optional; a UUID v4 is assigned when absent',
      },
      ...schema.properties,
    };
  }
  return document;
}

/** Swagger UI at /docs and the document at /docs-json, assets from swagger-ui-dist (no CDN). */
export function setupOpenApi(app: INestApplication): void {
  SwaggerModule.setup(SWAGGER_UI_PATH, app, () => createOpenApiDocument(app), {
    jsonDocumentUrl: OPENAPI_JSON_PATH.slice(1),
    yamlDocumentUrl: 'docs-yaml',
    customSiteTitle: 'memdb API',
  });
}
