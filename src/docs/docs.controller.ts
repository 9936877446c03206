import { readFileSync } from 'node:fs';
import { Controller, Get, Header } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { SkipThrottle } from '@nestjs/throttler';
import { OPENAPI_JSON_PATH } from './openapi';

const REDOC_BUNDLE = readFileSync(require.resolve('redoc/bundles/redoc.standalone.js'));
const REDOC_PAGE = `<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>memdb API reference</title>
  </head>
  <body>
    <redoc spec-url="${OPENAPI_JSON_PATH}"></redoc>
    <script src="/redoc/redoc.standalone.js"></script>
  </body>
</html>
`;

/** ReDoc at /redoc, its bundle served from the `redoc` npm package: no CDN. */
@ApiExcludeController()
@SkipThrottle()
@Controller('redoc')
export class DocsController {
  @Get()
  @Header('Content-Type', 'text/html; charset=utf-8')
  page(): string {
    return REDOC_PAGE;
  }

  @Get('redoc.standalone.js')
  @Header('Content-Type', 'text/javascript; charset=utf-8')
  @Header('Cache-Control', 'public, max-age=86400')
  bundle(): Buffer {
    return REDOC_BUNDLE;
  }
}
