import { Controller, Get, Res } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { hostname } from 'node:os';
import { seqTo } from '../common/http/sequence';
import type { HeaderSink } from '../common/http/header-sink';
import type { Env } from '../config/env.validation';
import { StorageService, type ClusterStatus } from '../database/storage.service';

@ApiTags('cluster')
@Controller('api/v1/cluster')
export class ClusterController {
  private readonly replica: string;

  constructor(
    private readonly storage: StorageService,
    config: ConfigService<Env, true>,
  ) {
    this.replica = config.get('REPLICA_NAME', { infer: true }) ?? `${hostname()}-${process.pid}`;
  }

  @Get()
  @ApiOperation({
    summary:
      "This server's place in the command log: mode, replica, applied and last sequence, lag",
  })
  @ApiOkResponse({
    schema: {
      type: 'object',
      required: ['mode', 'replica', 'applied_seq', 'last_seq', 'lag', 'nats', 'stream'],
      properties: {
        mode: { type: 'string', enum: ['embedded', 'nats'] },
        replica: { type: 'string' },
        applied_seq: { type: 'integer' },
        last_seq: { type: 'integer' },
        lag: { type: 'integer' },
        nats: {
          type: 'string',
          enum: ['connected', 'reconnecting', 'disconnected'],
          nullable: true,
        },
        stream: {
          type: 'object',
          nullable: true,
          properties: { name: { type: 'string' }, replicas: { type: 'integer' } },
        },
      },
    },
  })
  status(@Res({ passthrough: true }) res: HeaderSink): ClusterStatus {
    const status = this.storage.clusterStatus(this.replica);
    seqTo(res).seq = status.applied_seq;
    return status;
  }
}
