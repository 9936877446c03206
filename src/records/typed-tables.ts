import { classValidatorSchema } from '../common/validation/class-validator-schema';
import type { RecordValidator } from '../database/record.types';
import { OrderDto } from './dto/order.dto';
import { UserDto } from './dto/user.dto';

/** The design's models. Every other table accepts any JSON object. */
export const TYPED_TABLES = { users: UserDto, orders: OrderDto } as const;

export const TYPED_TABLE_SCHEMAS: Readonly<Record<string, RecordValidator>> = Object.fromEntries(
  Object.entries(TYPED_TABLES).map(([table, dto]) => [table, classValidatorSchema(dto)]),
);
