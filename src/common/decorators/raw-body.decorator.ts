import { SetMetadata } from '@nestjs/common';

export const RAW_BODY = 'memdb:rawBody';

/** The handler reads the request body itself, in any media type: JsonBodyGuard leaves it unread. */
export const RawBody = (): MethodDecorator => SetMetadata(RAW_BODY, true);
