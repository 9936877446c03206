import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import { APP_INFO } from '../config/app-info';

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
  return SwaggerModule.createDocument(app, config);
}

/** Swagger UI at /docs and the document at /docs-json, assets from swagger-ui-dist (no CDN). */
export function setupOpenApi(app: INestApplication): void {
  SwaggerModule.setup(SWAGGER_UI_PATH, app, () => createOpenApiDocument(app), {
    jsonDocumentUrl: OPENAPI_JSON_PATH.slice(1),
    yamlDocumentUrl: 'docs-yaml',
    customSiteTitle: 'memdb API',
  });
}
