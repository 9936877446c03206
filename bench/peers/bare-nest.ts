/**
 * The ceiling for memdb: a bare NestJS app on the same adapter (HTTP_ADAPTER, express by
 * default, or fastify, each with its own defaults), answering GET with a constant and POST
 * through the same ValidationPipe and UserDto memdb uses, and nothing else.
 */
import 'reflect-metadata';
import { Body, Controller, Get, Module, Param, Post, ValidationPipe } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { UserDto } from '../../src/records/dto/user.dto';

const RECORD = { id: 'u1', email: 'ada@example.com', full_name: 'Ada Lovelace', age: 36 };

@Controller()
class BareController {
  @Get('items/:id')
  get(@Param('id') _id: string): typeof RECORD {
    return RECORD;
  }

  @Post('users')
  create(@Body() user: UserDto): UserDto {
    return user;
  }
}

@Module({ controllers: [BareController] })
class BareModule {}

async function main(): Promise<void> {
  const adapter =
    process.env.HTTP_ADAPTER === 'fastify' ? new FastifyAdapter() : new ExpressAdapter();
  const app = await NestFactory.create(BareModule, adapter, { logger: false });
  app.useGlobalPipes(
    new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }),
  );
  await app.listen(Number(process.env.PORT), '127.0.0.1');
}

void main();
