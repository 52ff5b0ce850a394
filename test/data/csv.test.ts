import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CSV_SPLIT_SEED, CsvDataSpec, loadCsv, parseCsvDataSpec } from '../../coordinator/data/csv.js';
import { epochPermutation } from '../../src/data/sampler.js';
import { encodeDataset, decodeDataset } from '../../src/data/binary.js';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dptrain-csv-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function file(name: string, text: string): Promise<string> {
  await writeFile(join(dir, name), text);
  return name;
}

const IRIS = `sepal_length,sepal_width,petal_length,petal_width,species
5.1,3.5,1.4,0.2,setosa
4.9,3.0,1.4,0.2,setosa
7.0,3.2,4.7,1.4,versicolor
6.4,3.2,4.5,1.5,versicolor
6.3,3.3,6.0,2.5,virginica
5.8,2.7,5.1,1.9,virginica
`;

const spec = (over: Partial<CsvDataSpec>): CsvDataSpec => ({ type: 'csv', train: 'iris.csv', label: 'species', ...over });

async function csvError(over: Partial<CsvDataSpec>): Promise<string> {
  try {
    await loadCsv(spec(over), { baseDir: dir });
  } catch (e) {
    expect((e as { code: string }).code).toBe('DPT_ERR_DATASET');
    return (e as Error).message;
  }
  throw new Error('expected DPT_ERR_DATASET');
}

describe('CSV spec', () => {
  it('parses and refuses with the field named', () => {
    expect(parseCsvDataSpec({ type: 'csv', train: 'a.csv', label: 'y' }).label).toBe('y');
    expect(() => parseCsvDataSpec({ type: 'csv', train: 'a.csv' })).toThrow(/data\.label/);
    expect(() => parseCsvDataSpec({ type: 'csv', train: 'a.csv', label: 'y', testFraction: 1 })).toThrow(/data\.testFraction/);
    expect(() => parseCsvDataSpec({ type: 'csv', train: 'a.csv', label: 'y', test: 'b.csv', testFraction: 0.2 })).toThrow(/data\.testFraction: give either/);
    expect(() => parseCsvDataSpec({ type: 'csv', train: 'a.csv', label: 'y', task: 'ranking' })).toThrow(/data\.task/);
    expect(() => parseCsvDataSpec({ type: 'csv', train: 'a.csv', label: 'y', extra: 1 })).toThrow(/extra/);
  });
});

describe('CSV loading', () => {
  it('loads a classification file with string labels (sorted ids) and a test file', async () => {
    await file('iris.csv', IRIS);
    await file('iris-test.csv', 'species,petal_width,petal_length,sepal_width,sepal_length\r\nvirginica,2.0,5.0,3.0,6.0\r\n"setosa",0.3,1.5,3.4,5.0\r\n');
    const d = await loadCsv(spec({ test: 'iris-test.csv' }), { baseDir: dir });
    expect(d.task).toBe('classification');
    expect(d.classNames).toEqual(['setosa', 'versicolor', 'virginica']);
    expect(d.featureNames).toEqual(['sepal_length', 'sepal_width', 'petal_length', 'petal_width']);
    expect(d.train.n).toBe(6);
    expect(d.train.xShape).toEqual([4]);
    expect(d.train.yShape).toEqual([]);
    expect(d.train.numClasses).toBe(3);
    expect(Array.from(d.train.y)).toEqual([0, 0, 1, 1, 2, 2]);
    expect(Array.from(d.train.x.subarray(0, 4))).toEqual([5.1, 3.5, 1.4, 0.2].map(Math.fround));
    // test columns in another order are mapped by name
    expect(d.test!.n).toBe(2);
    expect(Array.from(d.test!.x)).toEqual([6.0, 3.0, 5.0, 2.0, 5.0, 3.4, 1.5, 0.3].map(Math.fround));
    expect(Array.from(d.test!.y)).toEqual([2, 0]);
    expect(d.train.featureNames).toEqual(d.featureNames);
    // a CSV dataset goes through the blob format unchanged
    expect(decodeDataset(encodeDataset(d.train)).numClasses).toBe(3);
  });

  it('uses integer labels as class ids, selects features, and does regression', async () => {
    await file('int.csv', 'a,b,c,y\n1,2,3,2\n4,5,6,0\n\n7,8,9,2\n');
    const d = await loadCsv({ type: 'csv', train: 'int.csv', label: 'y', features: ['c', 'a'] }, { baseDir: dir });
    expect(d.train.numClasses).toBe(3); // 1 + the largest id
    expect(d.classNames).toEqual(['0', '1', '2']);
    expect(Array.from(d.train.y)).toEqual([2, 0, 2]);
    expect(Array.from(d.train.x)).toEqual([3, 1, 6, 4, 9, 7]);
    const r = await loadCsv({ type: 'csv', train: 'int.csv', label: 'c', task: 'regression' }, { baseDir: dir });
    expect(r.train.yShape).toEqual([1]);
    expect(r.train.numClasses).toBeUndefined();
    expect(Array.from(r.train.y)).toEqual([3, 6, 9]);
    expect(r.featureNames).toEqual(['a', 'b', 'y']);
  });

  it('holds out a fixed fraction of the training rows', async () => {
    const rows = Array.from({ length: 50 }, (_, i) => `${i},${i % 2}`).join('\n');
    await file('fifty.csv', `id,y\n${rows}\n`);
    const s: CsvDataSpec = { type: 'csv', train: 'fifty.csv', label: 'y', testFraction: 0.2 };
    const d = await loadCsv(s, { baseDir: dir });
    expect(d.train.n).toBe(40);
    expect(d.test!.n).toBe(10);
    const perm = epochPermutation(CSV_SPLIT_SEED, 0, 50);
    const testIds = Array.from(perm.subarray(0, 10)).sort((a, b) => a - b);
    expect(Array.from(d.test!.x)).toEqual(testIds); // feature "id" = row number, file order kept
    const all = [...Array.from(d.train.x), ...Array.from(d.test!.x)].sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: 50 }, (_, i) => i));
    for (let i = 0; i < d.train.n; i++) expect(d.train.y[i]).toBe(d.train.x[i] % 2);
    const again = await loadCsv(s, { baseDir: dir });
    expect(Array.from(again.test!.x)).toEqual(Array.from(d.test!.x));
    expect(d.train.name).toBe('fifty.csv:train');
    expect(d.test!.name).toBe('fifty.csv:test');
  });

  it('standardises with the training rows\' mean and std only; a constant feature is only centered', async () => {
    await file('std-train.csv', 'f,k,y\n1,5,0\n2,5,1\n3,5,0\n6,5,1\n');
    await file('std-test.csv', 'f,k,y\n100,7,0\n');
    const d = await loadCsv({ type: 'csv', train: 'std-train.csv', test: 'std-test.csv', label: 'y', standardize: true }, { baseDir: dir });
    const mean = 3;
    const std = Math.sqrt((4 + 1 + 0 + 9) / 4); // population std
    expect(d.standardization).toEqual({ mean: [mean, 5], scale: [std, 1] });
    expect(Array.from(d.train.x)).toEqual([1, 5, 2, 5, 3, 5, 6, 5].map((v, i) => Math.fround(i % 2 === 0 ? (v - mean) / std : v - 5)));
    expect(Array.from(d.test!.x)).toEqual([Math.fround((100 - mean) / std), 2]);
    // held-out rows do not contribute to the statistics
    const rows = Array.from({ length: 10 }, (_, i) => `${i * i},${i % 2}`).join('\n');
    await file('std-frac.csv', `f,y\n${rows}\n`);
    const h = await loadCsv({ type: 'csv', train: 'std-frac.csv', label: 'y', testFraction: 0.3, standardize: true }, { baseDir: dir });
    const perm = epochPermutation(CSV_SPLIT_SEED, 0, 10);
    const held = new Set(Array.from(perm.subarray(0, 3)));
    const trainVals = Array.from({ length: 10 }, (_, i) => i).filter((i) => !held.has(i)).map((i) => i * i);
    const m = trainVals.reduce((a, b) => a + b, 0) / trainVals.length;
    expect(h.standardization!.mean[0]).toBeCloseTo(m, 12);
    let s = 0;
    for (let i = 0; i < h.train.n; i++) s += h.train.x[i];
    expect(Math.abs(s)).toBeLessThan(1e-5);
  });

  it('handles quoted fields, BOM and CRLF', async () => {
    await file('q.csv', '\ufeff"a, the first",b,y\r\n"1",2,"x ""y"""\r\n3,4,z\r\n');
    const d = await loadCsv({ type: 'csv', train: 'q.csv', label: 'y' }, { baseDir: dir });
    expect(d.featureNames).toEqual(['a, the first', 'b']);
    expect(d.classNames).toEqual(['x "y"', 'z']);
    expect(Array.from(d.train.x)).toEqual([1, 2, 3, 4]);
  });
});

describe('CSV errors name the file, the line and the column', () => {
  it('a value that is not a number', async () => {
    const lines = IRIS.split('\n');
    lines[3] = '7.0,3.2,4.7,abc,versicolor';
    await file('iris.csv', lines.join('\n'));
    expect(await csvError({})).toBe('iris.csv:4: column "petal_width": "abc" is not a number');
    lines[3] = '7.0,3.2,,1.4,versicolor';
    await file('iris.csv', lines.join('\n'));
    expect(await csvError({})).toBe('iris.csv:4: column "petal_length" is empty');
    lines[3] = '7.0,1e39,4.7,1.4,versicolor';
    await file('iris.csv', lines.join('\n'));
    expect(await csvError({})).toBe('iris.csv:4: column "sepal_width": "1e39" is out of the float32 range');
    lines[3] = '7.0,NaN,4.7,1.4,versicolor';
    await file('iris.csv', lines.join('\n'));
    expect(await csvError({})).toBe('iris.csv:4: column "sepal_width": "NaN" is not a number');
  });

  it('a wrong number of fields (blank lines still counted)', async () => {
    await file('iris.csv', IRIS.replace('6.4,3.2,4.5,1.5,versicolor\n', '\n6.4,3.2,4.5,versicolor\n'));
    expect(await csvError({})).toBe('iris.csv:6: expected 5 fields (as in the header), found 4');
  });

  it('empty files and header-only files', async () => {
    await file('empty.csv', '');
    expect(await csvError({ train: 'empty.csv' })).toBe('empty.csv: the file is empty (expected a header row and data rows)');
    await file('blank.csv', '\n  \n');
    expect(await csvError({ train: 'blank.csv' })).toMatch(/^blank\.csv: the file is empty/);
    await file('header.csv', 'a,b,species\n');
    expect(await csvError({ train: 'header.csv' })).toBe('header.csv: no data rows after the header');
    expect(await csvError({ train: 'nope.csv' })).toMatch(/^nope\.csv: cannot read the CSV file: .*ENOENT/);
  });

  it('a missing label or feature column lists the header', async () => {
    await file('iris.csv', IRIS);
    expect(await csvError({ label: 'class' })).toBe(
      'iris.csv:1: no label column "class"; the header\'s columns are: "sepal_length", "sepal_width", "petal_length", "petal_width", "species"');
    expect(await csvError({ features: ['sepal_length', 'petal_size'] })).toMatch(/^iris\.csv:1: no feature column "petal_size"; the header's columns are: "sepal_length"/);
    await file('iris-test.csv', 'sepal_length,sepal_width,petal_length,species\n1,2,3,setosa\n');
    expect(await csvError({ test: 'iris-test.csv' })).toMatch(/^iris-test\.csv:1: no feature column "petal_width"/);
  });

  it('bad labels', async () => {
    await file('iris.csv', IRIS);
    await file('iris-test.csv', 'sepal_length,sepal_width,petal_length,petal_width,species\n1,2,3,4,setosa\n1,2,3,4,daisy\n');
    expect(await csvError({ test: 'iris-test.csv' })).toBe('iris-test.csv:3: column "species": "daisy" is not a class of the training file');
    await file('int.csv', 'a,y\n1,0\n2,1\n');
    await file('int-test.csv', 'a,y\n1,2\n');
    expect(await csvError({ train: 'int.csv', test: 'int-test.csv', label: 'y' })).toBe('int-test.csv:2: column "y": "2" is not a class of the training file (class ids 0..1)');
    await file('one.csv', 'a,y\n1,0\n2,0\n');
    expect(await csvError({ train: 'one.csv', label: 'y' })).toMatch(/every label is 0; classification needs at least 2 classes/);
    await file('real.csv', 'a,y\n1,0.5\n2,1.5\n');
    expect(await csvError({ train: 'real.csv', label: 'y' })).toMatch(/^real\.csv: column "y": the labels are numbers .* set task: 'regression'/);
    await file('reg.csv', 'a,y\n1,0.5\n2,x\n');
    expect(await csvError({ train: 'reg.csv', label: 'y', task: 'regression' })).toBe('reg.csv:3: column "y": "x" is not a number');
    await file('emptylabel.csv', 'a,y\n1,cat\n2,\n');
    expect(await csvError({ train: 'emptylabel.csv', label: 'y' })).toBe('emptylabel.csv:3: column "y" is empty');
  });

  it('quotes: unterminated, stray, duplicate header names', async () => {
    await file('q1.csv', 'a,y\n"1,0\n');
    expect(await csvError({ train: 'q1.csv', label: 'y' })).toBe('q1.csv:2: field 1: a quoted field is not closed on this line (fields spanning lines are not supported)');
    await file('q2.csv', 'a,y\n1,ca"t\n');
    expect(await csvError({ train: 'q2.csv', label: 'y' })).toMatch(/^q2\.csv:2: field 2: a quote inside an unquoted field/);
    await file('dup.csv', 'a,a,y\n1,2,0\n');
    expect(await csvError({ train: 'dup.csv', label: 'y' })).toBe('dup.csv:1: column "a" appears twice in the header');
  });

  it('a hold-out that leaves a side empty', async () => {
    await file('tiny.csv', 'a,y\n1,0\n2,1\n');
    expect(await csvError({ train: 'tiny.csv', label: 'y', testFraction: 0.1 })).toMatch(/^tiny\.csv: testFraction 0\.1 of 2 rows leaves 0 test rows/);
  });
});
