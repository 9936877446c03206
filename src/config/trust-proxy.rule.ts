import { isIP } from 'node:net';
import { ValidatorConstraint, type ValidatorConstraintInterface } from 'class-validator';

const NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

function isSubnet(token: string): boolean {
  if (NAMES.has(token)) return true;
  const [address, prefix, ...rest] = token.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

/** TRUST_PROXY: a hop count 0–32, or addresses, subnets and the names loopback, linklocal, uniquelocal. */
@ValidatorConstraint({ name: 'trustProxy' })
export class TrustProxyRule implements ValidatorConstraintInterface {
  validate(value: unknown): boolean {
    if (typeof value === 'boolean') return true;
    if (typeof value === 'number') return Number.isInteger(value) && value >= 0 && value <= 32;
    return typeof value === 'string' && value.split(',').every((token) => isSubnet(token.trim()));
  }

  defaultMessage(): string {
    return 'TRUST_PROXY must be a hop count (0-32), true, false, or comma-separated addresses/subnets (10.0.0.0/8, loopback)';
  }
}
