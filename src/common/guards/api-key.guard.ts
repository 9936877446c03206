import { createHash, timingSafeEqual } from 'node:crypto';
import {
  type CanActivate,
  type ExecutionContext,
  HttpStatus,
  Injectable,
  Optional,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { Reflector } from '@nestjs/core';
import { API_ROLES, type ApiRole } from '../../config/api-keys';
import type { Env } from '../../config/env.validation';
import { PUBLIC_ROUTE, REQUIRED_ROLE } from '../decorators/access.decorator';
import { ApiProblemException } from '../problems/api-problem.exception';
import { AccessTickets, TICKET_ROUTE } from './access-tickets';

interface StoredKey {
  readonly digest: Buffer;
  readonly role: ApiRole;
}

const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const BEARER = /^Bearer\s+(\S+)\s*$/i;

function digest(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}

/**
 * With API_KEYS set, every route not marked @Public() needs a key, as `Authorization: Bearer
 * <key>` or `X-API-Key`, whose role is at least the route's (@RequiresRole, else read for GET
 * and write for other methods). Keys are compared as SHA-256 digests with timingSafeEqual,
 * against every configured key, so timing reveals neither a key nor which one matched.
 * Without API_KEYS every route is open.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  private readonly keys: readonly StoredKey[] | undefined;

  constructor(
    config: ConfigService<Env, true>,
    private readonly reflector: Reflector,
    @Optional() private readonly tickets?: AccessTickets<ApiRole>,
  ) {
    this.keys = config
      .get('API_KEYS', { infer: true })
      ?.map(({ key, role }) => ({ digest: digest(key), role }));
  }

  canActivate(context: ExecutionContext): boolean {
    if (this.keys === undefined) return true;
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE, targets)) return true;
    const request = context.switchToHttp().getRequest<{
      method: string;
      headers: Record<string, unknown>;
      query?: Record<string, unknown>;
    }>();
    const presented = presentedKey(request.headers);
    const ticket = request.query?.ticket;
    if (
      presented === undefined &&
      typeof ticket === 'string' &&
      this.tickets !== undefined &&
      this.reflector.get<boolean>(TICKET_ROUTE, context.getHandler())
    ) {
      if (this.tickets.redeem(ticket) === undefined)
        throw unauthenticated('The ticket is not valid: it is used once, within 60 seconds');
      return true;
    }
    if (presented === undefined) {
      throw unauthenticated(
        'An API key is required: send Authorization: Bearer <key> or X-API-Key: <key>',
      );
    }
    const role = this.roleOf(presented);
    if (role === undefined) throw unauthenticated('The API key is not valid');
    const needed =
      this.reflector.getAllAndOverride<ApiRole | undefined>(REQUIRED_ROLE, targets) ??
      (READ_METHODS.has(request.method) ? 'read' : 'write');
    if (API_ROLES.indexOf(role) < API_ROLES.indexOf(needed)) {
      throw new ApiProblemException(
        HttpStatus.FORBIDDEN,
        'FORBIDDEN',
        `This request needs the ${needed} role; the key's role is ${role}`,
      );
    }
    return true;
  }

  private roleOf(presented: string): ApiRole | undefined {
    const candidate = digest(presented);
    let role: ApiRole | undefined;
    for (const key of this.keys ?? []) {
      if (timingSafeEqual(candidate, key.digest) && role === undefined) role = key.role;
    }
    return role;
  }
}

/** The API key a request presents (Authorization: Bearer, else X-API-Key), if any. */
export function presentedKey(headers: Record<string, unknown>): string | undefined {
  const authorization = headers.authorization;
  if (typeof authorization === 'string') return BEARER.exec(authorization)?.[1];
  const apiKey = headers['x-api-key'];
  return typeof apiKey === 'string' && apiKey.length > 0 ? apiKey : undefined;
}

function unauthenticated(detail: string): ApiProblemException {
  return new ApiProblemException(HttpStatus.UNAUTHORIZED, 'UNAUTHENTICATED', detail, undefined, {
    'WWW-Authenticate': 'Bearer realm="memdb"',
  });
}
