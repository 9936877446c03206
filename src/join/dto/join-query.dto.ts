export const JOIN_LIMIT_DEFAULT = 100;
export const JOIN_LIMIT_MAX = 10_000;
