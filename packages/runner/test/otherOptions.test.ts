import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseOtherOptions } from '../src/index.ts';
import { parseStringList } from '../src/otherOptions.ts';

describe('parseStringList', () => {
  test('reads a Python list literal with either quote, escapes and a trailing comma', () => {
    assert.deepEqual(parseStringList(`['--a=1', "--b='2'", '--c=it\\'s',]`), [
      '--a=1',
      "--b='2'",
      "--c=it's",
    ]);
  });

  test('reads a JSON array and treats an empty value as no options', () => {
    assert.deepEqual(parseStringList('["--dns=192.0.2.1"]'), ['--dns=192.0.2.1']);
    assert.deepEqual(parseStringList('  '), []);
    assert.deepEqual(parseStringList('[]'), []);
  });

  test('refuses anything that is not a list of strings', () => {
    for (const text of [
      '--dns=1.1.1.1',
      '[1, 2]',
      "['unterminated]",
      "['a' 'b']",
      '{"a": 1}',
      "['a'] x",
    ]) {
      assert.equal(parseStringList(text), undefined, text);
    }
  });
});

describe('parseOtherOptions', () => {
  test('names each unsupported or malformed option', () => {
    const { problems } = parseOtherOptions(
      JSON.stringify([
        '--init',
        '--restart=always',
        '--ulimit=nofile',
        '--label=org.seatable.pipeline.run-id=1',
      ]),
    );

    assert.equal(problems.length, 4);
    assert.equal(problems[0], '"--init" must be written --name=value');
    assert.match(problems[1] ?? '', /^"--restart=always" is not supported \(supported: add-host, /);
    assert.equal(problems[2], '"--ulimit=nofile" must be name=soft[:hard]');
    assert.match(
      problems[3] ?? '',
      /must not set the pipeline's own org\.seatable\.pipeline labels/,
    );
  });

  test('a ulimit without a hard value uses the soft one for both', () => {
    const { options, problems } = parseOtherOptions("['--ulimit=nproc=64']");

    assert.deepEqual(problems, []);
    assert.deepEqual(options.ulimits, [{ Name: 'nproc', Soft: 64, Hard: 64 }]);
  });
});
