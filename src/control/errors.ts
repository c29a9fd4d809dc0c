/**
 * The control API's errors, in Toxiproxy's shape: `{"error": …, "status": …}`.
 * Messages that Toxiproxy has (api.go's Err… values) are spelled as it
 * spells them, so a client or a test matching them keeps working.
 */
import type { Refusal } from './model.js';

export interface ApiError {
  readonly error: string;
  readonly status: number;
}

export type Result<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: ApiError };

export const success = <T>(value: T): Result<T> => ({ ok: true, value });
export const failure = <T>(status: number, error: string): Result<T> => ({ ok: false, error: { error, status } });

/** 400, with Toxiproxy's prefix for anything wrong in a body. */
export const badBody = <T>(detail: string): Result<T> => failure(400, `bad request body: ${detail}`);
export const missingField = <T>(detail: string): Result<T> => failure(400, `missing required field: ${detail}`);

export const MESSAGES = {
  invalidStream: 'stream was invalid, can be either upstream or downstream',
  invalidToxicType: 'invalid toxic type',
  browser: 'User agent not allowed',
} as const;

const REFUSALS: { readonly [R in Refusal]: ApiError } = {
  'proxy-not-found': { error: 'proxy not found', status: 404 },
  'proxy-exists': { error: 'proxy already exists', status: 409 },
  'toxic-not-found': { error: 'toxic not found', status: 404 },
  'toxic-exists': { error: 'toxic already exists', status: 409 },
};

export const refusalError = (refusal: Refusal): ApiError => REFUSALS[refusal];
