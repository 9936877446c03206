import { randomBytes } from 'node:crypto';
import { SetMetadata } from '@nestjs/common';

/** How long a ticket may wait for its connection. */
export const TICKET_TTL_S = 60;
/** Live tickets at most; past it the oldest are forgotten (each is worth one connection). */
const TICKETS_MAX = 10_000;

export const TICKET_ROUTE = 'memdb:ticket';

/**
 * Accepts `?ticket=` instead of an API key on this route (browsers' EventSource cannot send
 * headers). A ticket is single-use and carries the role of the key that asked for it.
 */
export const AcceptsTicket = (): MethodDecorator => SetMetadata(TICKET_ROUTE, true);

/**
 * Single-use tokens standing in for an API key on one connection, for 60 seconds. Held in
 * memory by the server that issued them (in cluster mode, connect to the same replica, or ask
 * each replica for its own). Never logged: the request log writes paths without queries.
 */
export class AccessTickets<Role extends string = string> {
  private readonly tickets = new Map<string, { role: Role; expires: number }>();

  issue(role: Role): { ticket: string; expires_in: number } {
    const now = Date.now();
    for (const [ticket, { expires }] of this.tickets) {
      if (expires > now && this.tickets.size < TICKETS_MAX) break;
      this.tickets.delete(ticket);
    }
    const ticket = randomBytes(24).toString('base64url');
    this.tickets.set(ticket, { role, expires: now + TICKET_TTL_S * 1000 });
    return { ticket, expires_in: TICKET_TTL_S };
  }

  /** The role of a live ticket, which is used up; undefined for an unknown or expired one. */
  redeem(ticket: string): Role | undefined {
    const held = this.tickets.get(ticket);
    if (held === undefined) return undefined;
    this.tickets.delete(ticket);
    return held.expires > Date.now() ? held.role : undefined;
  }
}
