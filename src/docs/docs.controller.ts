import { readFileSync } from 'node:fs';
import { Controller, Get, Header, NotFoundException, StreamableFile } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { ApiExcludeController } from '@nestjs/swagger';
import { SkipThrottle } from '@nestjs/throttler';
import { Public } from '../common/decorators/access.decorator';
import type { Env } from '../config/env.validation';
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
@Public()
@Controller('redoc')
export class DocsController {
  private readonly enabled: boolean;

  constructor(config: ConfigService<Env, true>) {
    this.enabled = config.get('DOCS_ENABLED', { infer: true });
  }

  @Get()
  @Header('Content-Type', 'text/html; charset=utf-8')
  page(): string {
    this.assertEnabled();
    return REDOC_PAGE;
  }

  @Get('redoc.standalone.js')
  @Header('Cache-Control', 'public, max-age=86400')
  bundle(): StreamableFile {
    this.assertEnabled();
    // A StreamableFile is sent as bytes; a Buffer returned as such would be JSON-encoded.
    return new StreamableFile(REDOC_BUNDLE, {
      type: 'text/javascript; charset=utf-8',
      length: REDOC_BUNDLE.length,
    });
  }

  /** DOCS_ENABLED=false: the docs routes answer as if they did not exist. */
  private assertEnabled(): void {
    if (!this.enabled)
      throw new NotFoundException('The API documentation is turned off (DOCS_ENABLED=false)');
  }
}
