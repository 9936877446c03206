import {
  type BeforeApplicationShutdown,
  Controller,
  Get,
  Headers,
  HttpStatus,
  Inject,
  Query,
  Req,
  Res,
  StreamableFile,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { ApiOkResponse, ApiOperation, ApiProduces, ApiQuery, ApiTags } from '@nestjs/swagger';
import type { IncomingMessage } from 'node:http';
import { ApiProblems } from '../common/decorators/api-problems.decorator';
import type { HeaderSink } from '../common/http/header-sink';
import { seqTo } from '../common/http/sequence';
import { ApiProblemException } from '../common/problems/api-problem.exception';
import type { Env } from '../config/env.validation';
import type { Change, Position } from '../database/changes/change-log';
import { compilePredicate } from '../database/query/filter';
import { parseRecordFilter } from '../database/query/query-params';
import { StorageService } from '../database/storage.service';
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
    config: ConfigService<Env, true>,
  ) {
    this.waitMs = config.get('MIN_SEQ_WAIT_MS', { infer: true });
  }

  @Get()
  @ApiOperation({
    summary: 'The change feed: Server-Sent Events (Accept: text/event-stream), or a long-poll',
    description:
      'Every change in log order, each at its position `<seq>.<i>`, exactly once across reconnects ' +
      'with Last-Event-ID (or since=). See the README section "Change feed".',
  })
  @ApiProduces(EVENT_STREAM, 'application/json')
  @ApiQuery({ name: 'since', required: false, type: String })
  @ApiQuery({ name: 'tables', required: false, type: String })
  @ApiQuery({ name: 'wait', required: false, type: Number })
  @ApiQuery({ name: 'limit', required: false, type: Number })
  @ApiOkResponse({ description: 'An SSE stream, or the long-poll answer' })
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
    const from = await this.startOf(query.since, sse ? lastEventId : undefined, applied);
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
      return { accept: () => true };
    }
    if (typeof tables !== 'string' || !TABLES.test(tables))
      throw invalid('tables must be a comma-separated list of table names');
    const names = new Set(tables.split(','));
    if (predicate === undefined) return { accept: (change) => names.has(change.table) };
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
