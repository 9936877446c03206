import { Module } from '@nestjs/common';
import { ClusterController } from './cluster.controller';

/** GET /api/v1/cluster: where this server stands in the command log (both modes). */
@Module({ controllers: [ClusterController] })
export class ClusterModule {}
