import { Module } from '@nestjs/common';
import { AdminController } from './admin.controller';

/** Backup, restore and compaction (admin role). */
@Module({ controllers: [AdminController] })
export class AdminModule {}
