import { ConsoleLogger, type LogLevel } from '@nestjs/common';
import { LOG_LEVELS, type LogFormat, type LogLevelName } from '../../config/env.validation';

/**
 * Nest's console logger with its text timestamp worked out once a second instead of on every
 * line: the timestamp shows whole seconds, and Intl date formatting was the largest single cost
 * of a request's log line.
 */
class AppLogger extends ConsoleLogger {
  private second = -1;
  private stamp = '';

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
