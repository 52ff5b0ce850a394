// SHA-256 for every runtime of the core (worker threads, Node processes,
// browser tabs): dataset blobs and configs are identified by their digest.
// The digest comes from @noble/hashes (audited, pure JavaScript, the same
// code in browsers and Node; SubtleCrypto is async and absent on plain-HTTP
// pages). The coordinator may hash big files with node:crypto instead
// (faster); test/data/sha256.test.ts shows both give the same digests.
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';

/** The SHA-256 digest of `bytes`, 32 bytes. Any Uint8Array, also one on a SharedArrayBuffer. */
export function sha256(bytes: Uint8Array): Uint8Array {
  return nobleSha256(bytes);
}

/** Lower-case hex of bytes. */
export function toHex(bytes: Uint8Array): string {
  return bytesToHex(bytes);
}

/** The SHA-256 digest of `bytes` as 64 lower-case hex characters. */
export function sha256Hex(bytes: Uint8Array): string {
  return bytesToHex(nobleSha256(bytes));
}

/** A function from bytes to a lower-case hex SHA-256 (@noble/hashes here, node:crypto in the coordinator). */
export type HashFn = (bytes: Uint8Array) => string;
