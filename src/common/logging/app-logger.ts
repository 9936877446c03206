import { ConsoleLogger, type ConsoleLoggerOptions, type LogLevel } from '@nestjs/common';
import { LOG_LEVELS, type LogFormat, type LogLevelName } from '../../config/env.validation';

/** Text queued for stdout before it is written in one go. */
const FLUSH_AT_CHARS = 64 * 1024;

/**
 * Nest's console logger, made cheaper per line, which matters for the one line per request:
 * - the text timestamp is worked out once a second (it shows whole seconds; Intl date
 *   formatting was the largest single cost of a line);
 * - text lines bound for stdout are gathered and written once per event-loop turn, one write
 *   instead of one per line. stderr lines (errors) are written at once, after what is queued,
 *   and the queue is written out when the process exits.
 */
class AppLogger extends ConsoleLogger {
  private second = -1;
  private stamp = '';
  private queued = '';
  private flushing = false;

  constructor(options: ConsoleLoggerOptions) {
    super(options);
    process.once('exit', () => this.flush());
  }

  protected override printMessages(
    messages: unknown[],
    context = '',
    logLevel: LogLevel = 'log',
    writeStreamType?: 'stdout' | 'stderr',
    errorStack?: unknown,
  ): void {
    if (this.options.json || this.options.forceConsole || writeStreamType === 'stderr') {
      this.flush();
      super.printMessages(messages, context, logLevel, writeStreamType, errorStack);
      return;
    }
    for (const message of messages) {
      this.queued += this.formatMessage(
        logLevel,
        message,
        this.formatPid(process.pid),
        logLevel.toUpperCase().padStart(7, ' '),
        this.formatContext(context),
        this.updateAndGetTimestampDiff(),
      );
    }
    if (this.queued.length >= FLUSH_AT_CHARS) this.flush();
    else if (!this.flushing) {
      this.flushing = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.flushing = false;
    if (this.queued === '') return;
    const text = this.queued;
    this.queued = '';
    process.stdout.write(text);
  }

  protected override getTimestamp(): string {
    const second = Math.floor(Date.now() / 1000);
    if (second !== this.second) {
      this.second = second;
      this.stamp = super.getTimestamp();
    }
    return this.stamp;
  }
}

/** The application logger: `LOG_LEVEL` and more severe, as JSON lines or text. */
export function createAppLogger(level: LogLevelName, format: LogFormat): ConsoleLogger {
  const logLevels = LOG_LEVELS.slice(0, LOG_LEVELS.indexOf(level) + 1) as LogLevel[];
  return new AppLogger({
    prefix: 'memdb',
    json: format === 'json',
    logLevels,
    colors: format === 'text' && process.stdout.isTTY === true,
  });
}
