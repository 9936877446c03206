export const LIST_LIMIT_DEFAULT = 100;
export const LIST_LIMIT_MAX = 1000;
