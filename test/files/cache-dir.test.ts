import { describe, expect, it } from 'vitest';
import { resolve } from 'node:path';
import { cacheNotWritable, defaultCacheDir } from '../../node/files/cache-dir.js';

const home = () => '/home/u';

describe('defaultCacheDir', () => {
  it('takes $DPTRAIN_CACHE first, then $XDG_CACHE_HOME/dptrain, then ~/.cache/dptrain', () => {
    expect(defaultCacheDir({ DPTRAIN_CACHE: '/c', XDG_CACHE_HOME: '/x' }, home)).toBe('/c');
    expect(defaultCacheDir({ XDG_CACHE_HOME: '/x' }, home)).toBe('/x/dptrain');
    expect(defaultCacheDir({}, home)).toBe('/home/u/.cache/dptrain');
  });

  it('treats empty variables as unset, ignores a relative XDG_CACHE_HOME, resolves a relative DPTRAIN_CACHE', () => {
    expect(defaultCacheDir({ DPTRAIN_CACHE: '', XDG_CACHE_HOME: '' }, home)).toBe('/home/u/.cache/dptrain');
    expect(defaultCacheDir({ XDG_CACHE_HOME: 'rel/cache' }, home)).toBe('/home/u/.cache/dptrain');
    expect(defaultCacheDir({ DPTRAIN_CACHE: 'c' }, home)).toBe(resolve('c'));
  });
});

describe('cacheNotWritable', () => {
  it('names the folder, the cause and the variable to set', () => {
    const e = cacheNotWritable('/ro/dptrain', Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' }));
    expect(e.code).toBe('DPT_ERR_CACHE');
    expect(e.message).toBe('cannot write the dataset cache /ro/dptrain (EACCES: permission denied); set DPTRAIN_CACHE to a writable folder');
  });
});
