import {
  type BeforeApplicationShutdown,
  Controller,
  Get,
  Headers,
  HttpCode,
  Post,
  HttpStatus,
  Inject,
  Query,
  Req,
  Res,
  StreamableFile,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import {
  ApiExtraModels,
  ApiHeader,
  getSchemaPath,
  ApiCreatedResponse,
  ApiOkResponse,
  ApiOperation,
  ApiQuery,
  ApiTags,
} from '@nestjs/swagger';
import type { IncomingMessage } from 'node:http';
import { RequiresRole } from '../common/decorators/access.decorator';
import { ApiProblems } from '../common/decorators/api-problems.decorator';
import { AcceptsTicket, AccessTickets } from '../common/guards/access-tickets';
import type { HeaderSink } from '../common/http/header-sink';
import { seqTo } from '../common/http/sequence';
import { ApiProblemException } from '../common/problems/api-problem.exception';
import type { Env } from '../config/env.validation';
import type { Change, Position } from '../database/changes/change-log';
import { compilePredicate } from '../database/query/filter';
import { parseRecordFilter } from '../database/query/query-params';
import { StorageService } from '../database/storage.service';
import {
  ChangeEventDto,
  ChangesPollDto,
  OverflowEventDto,
  ResetEventDto,
  TableEventDto,
} from './dto/change-events.dto';
import {
  changeData,
  ChangeFeeds,
  parsePosition,
  positionText,
  resetData,
  type ChangeFilter,
} from './change-feed';

export const CHANGE_FEEDS = Symbol('CHANGE_FEEDS');

const EVENT_STREAM = 'text/event-stream';
/** Swagger's way to say integer for a query parameter. */
const Integer = 'integer';
const WAIT_DEFAULT_S = 25;
const WAIT_MAX_S = 60;
const LIMIT_DEFAULT = 1000;
const LIMIT_MAX = 10_000;
/** This route's own parameters; every other name is a record filter. */
const RESERVED = new Set(['tables', 'since', 'wait', 'limit', 'ticket']);
const TABLES = /^[A-Za-z0-9_-]{1,64}(,[A-Za-z0-9_-]{1,64}){0,99}$/;

function invalid(detail: string): ApiProblemException {
  return new ApiProblemException(HttpStatus.BAD_REQUEST, 'INVALID_QUERY', detail);
}

/** A whole number in [min, max] from a query value, or the default when absent. */
function intParam(value: unknown, name: string, min: number, max: number, fallback: number) {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !/^\d{1,9}$/.test(value))
    throw invalid(`${name} must be a whole number from ${min} to ${max}`);
  const n = Number(value);
  if (n < min || n > max) throw invalid(`${name} must be a whole number from ${min} to ${max}`);
  return n;
}

@ApiTags('changes')
@Controller('api/v1/changes')
export class ChangesController implements BeforeApplicationShutdown {
  private readonly waitMs: number;

  constructor(
    private readonly storage: StorageService,
    @Inject(CHANGE_FEEDS) private readonly feeds: ChangeFeeds,
    private readonly tickets: AccessTickets,
    config: ConfigService<Env, true>,
  ) {
    this.waitMs = config.get('MIN_SEQ_WAIT_MS', { infer: true });
  }

  @Post('tickets')
  @HttpCode(HttpStatus.CREATED)
  @RequiresRole('read')
  @ApiOperation({
    summary: 'A single-use ticket for one change feed connection (EventSource cannot send headers)',
    description:
      'With API_KEYS set, a browser asks for a ticket with its key, then opens ' +
      '`new EventSource("/api/v1/changes?ticket=...")`. A ticket is used once, within 60 seconds, ' +
      'on the server that issued it. Tickets never appear in logs.',
  })
  @ApiCreatedResponse({
    schema: {
      type: 'object',
      required: ['ticket', 'expires_in'],
      properties: { ticket: { type: 'string' }, expires_in: { type: 'integer', example: 60 } },
    },
  })
  ticket(@Res({ passthrough: true }) res: HeaderSink): { ticket: string; expires_in: number } {
    seqTo(res).seq = this.storage.appliedSeq;
    res.header('Cache-Control', 'no-store');
    return this.tickets.issue('read');
  }

  @Get()
  @AcceptsTicket()
  @ApiOperation({
    summary: 'The change feed: Server-Sent Events (Accept: text/event-stream), or a long-poll',
    description:
      'Every change in log order, each at its position `<seq>.<i>`, exactly once across reconnects ' +
      'with Last-Event-ID (or since=). See the README section "Change feed".',
  })
  @ApiQuery({
    name: 'since',
    required: false,
    type: Integer,
    description: 'Start after this sequence (0: the oldest change kept); Last-Event-ID wins',
  })
  @ApiQuery({
    name: 'tables',
    required: false,
    type: String,
    description: 'Only these tables (comma-separated); with one, list filters apply too',
  })
  @ApiQuery({
    name: 'wait',
    required: false,
    type: Integer,
    description: 'Long-poll: seconds to wait for a change (0-60, default 25)',
  })
  @ApiQuery({
    name: 'limit',
    required: false,
    type: Integer,
    description: 'Long-poll: changes at most (1-10000, default 1000)',
  })
  @ApiQuery({
    name: 'ticket',
    required: false,
    type: String,
    description: 'A ticket from POST /api/v1/changes/tickets, instead of an API key',
  })
  @ApiHeader({
    name: 'Last-Event-ID',
    required: false,
    description: 'Resume after this position (`<seq>.<i>` or `<seq>`), as EventSource sends it',
  })
  @ApiExtraModels(ChangeEventDto, TableEventDto, ResetEventDto, OverflowEventDto, ChangesPollDto)
  @ApiOkResponse({
    description:
      'text/event-stream: events `change` (ChangeEventDto), `table` (TableEventDto), `reset` ' +
      '(ResetEventDto, first, when the resume point cannot be served exactly) and `overflow` ' +
      '(OverflowEventDto, last), each with `id:` its position, and `:` comment heartbeats. ' +
      'application/json: the long-poll answer.',
    content: {
      [EVENT_STREAM]: {
        schema: { type: 'string' },
        example:
          'event: change\nid: 1042.0\ndata: {"pos":"1042.0","seq":1042,"table":"orders","op":"insert","id":"o1","record":{"id":"o1"}}\n\n',
      },
      'application/json': { schema: { $ref: getSchemaPath(ChangesPollDto) } },
    },
  })
  @ApiProblems(400, 503)
  async changes(
    @Query() query: Record<string, unknown>,
    @Headers('accept') accept: string | undefined,
    @Headers('last-event-id') lastEventId: string | undefined,
    @Req() request: { raw?: IncomingMessage } & IncomingMessage,
    @Res({ passthrough: true }) res: HeaderSink,
  ): Promise<StreamableFile | Record<string, unknown>> {
    const filter = this.filterOf(query);
    const sse = accept?.includes(EVENT_STREAM) === true;
    const applied = this.storage.appliedSeq;
    const from = await this.startOf(query.since, lastEventId, applied);
    seqTo(res).seq = this.storage.appliedSeq;
    if (sse) {
      res.header('Cache-Control', 'no-cache');
      res.header('X-Accel-Buffering', 'no');
      return new StreamableFile(this.feeds.stream(from, filter), { type: EVENT_STREAM });
    }
    const waitS = intParam(query.wait, 'wait', 0, WAIT_MAX_S, WAIT_DEFAULT_S);
    const limit = intParam(query.limit, 'limit', 1, LIMIT_MAX, LIMIT_DEFAULT);
    const left = new AbortController();
    const raw = request.raw ?? request;
    const leave = () => left.abort();
    raw.once('close', leave);
    try {
      const read = await this.feeds.poll(from, filter, limit, waitS * 1000, left.signal);
      const last = read.changes.at(-1);
      seqTo(res).seq = this.storage.appliedSeq;
      return {
        changes: read.changes.map((change) => JSON.parse(changeData(change, filter)) as unknown),
        last_pos: last?.pos ?? positionText(read.next),
        last_seq: this.storage.appliedSeq,
        reset: read.reset === undefined ? null : resetData(read.reset),
      };
    } finally {
      raw.off('close', leave);
    }
  }

  /** Before the HTTP server closes: it waits for open connections, and feeds stay open. */
  beforeApplicationShutdown(): void {
    this.feeds.closeAll();
  }

  /**
   * Where a feed starts: after Last-Event-ID, or after `since` (0: the oldest change kept), or
   * from now. A replica behind the position waits for it as X-Memdb-Min-Seq does.
   */
  private async startOf(
    since: unknown,
    lastEventId: string | undefined,
    applied: number,
  ): Promise<Position> {
    if (lastEventId !== undefined && lastEventId.trim() !== '') {
      const position = parsePosition(lastEventId);
      if (position === undefined)
        throw invalid('Last-Event-ID must be a position: <seq>.<i> or <seq>');
      await this.reach(position.seq);
      return position;
    }
    if (since !== undefined) {
      if (
        typeof since !== 'string' ||
        !/^\d{1,16}$/.test(since) ||
        !Number.isSafeInteger(Number(since))
      )
        throw invalid('since must be a sequence number (a whole number, 0 for the oldest kept)');
      const seq = Number(since);
      if (seq === 0) return this.storage.changes.oldest;
      await this.reach(seq);
      return { seq, i: Infinity };
    }
    return { seq: applied, i: Infinity };
  }

  /** Waits (as X-Memdb-Min-Seq does) for a position this server has not applied yet. */
  private async reach(seq: number): Promise<void> {
    if (this.storage.appliedSeq >= seq) return;
    await this.storage.waitForSeq(seq, this.waitMs);
  }

  /**
   * `tables=a,b` and, with exactly one table, list filters on its records: a change passes when
   * the record matched before or after it (`matches` says which), so a client sees records
   * leave its filter.
   */
  private filterOf(query: Record<string, unknown>): ChangeFilter {
    const { tables } = query;
    const predicate = parseRecordFilter(query, RESERVED);
    if (tables === undefined) {
      if (predicate !== undefined)
        throw invalid('record filters need exactly one table: tables=<name>&field=op.value');
      return { key: '*', accept: () => true };
    }
    if (typeof tables !== 'string' || !TABLES.test(tables))
      throw invalid('tables must be a comma-separated list of table names');
    const names = new Set(tables.split(','));
    if (predicate === undefined)
      return { key: [...names].sort().join(','), accept: (change) => names.has(change.table) };
    if (names.size !== 1)
      throw invalid('record filters need exactly one table: tables=<name>&field=op.value');
    const test = compilePredicate(predicate);
    const matches = (change: Change) => change.record != null && test(change.record);
    return {
      accept: (change) =>
        names.has(change.table) &&
        (change.event === 'table' ||
          matches(change) ||
          (change.before !== undefined && test(change.before))),
      matches,
    };
  }
}
