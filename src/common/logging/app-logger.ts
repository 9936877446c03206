import { ConsoleLogger, type LogLevel } from '@nestjs/common';
import { LOG_LEVELS, type LogFormat, type LogLevelName } from '../../config/env.validation';

/** The application logger: `LOG_LEVEL` and more severe, as JSON lines or text. */
export function createAppLogger(level: LogLevelName, format: LogFormat): ConsoleLogger {
  const logLevels = LOG_LEVELS.slice(0, LOG_LEVELS.indexOf(level) + 1) as LogLevel[];
  return new ConsoleLogger({
    prefix: 'memdb',
    json: format === 'json',
    logLevels,
    colors: format === 'text' && process.stdout.isTTY === true,
  });
}
