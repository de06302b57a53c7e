import type { StandinScript } from './scriptCatalog.ts';

/** The base that `npm start` fills with the sample scripts. */
export const sampleBaseUuid = '5ea7ab1e-0000-4000-8000-00000000c0de';

/** The owner the printed sample requests run as. */
export const sampleOwner = 'sample-user@example.invalid';

export interface SampleScript extends StandinScript {
  /** One line for the banner of `npm start`. */
  description: string;
}

export const sampleScripts: SampleScript[] = [
  {
    dtableUuid: sampleBaseUuid,
    scriptName: 'hello.py',
    description: 'prints a greeting',
    source: 'print("Hello from the SeaTable Python pipeline!")\n',
  },
  {
    dtableUuid: sampleBaseUuid,
    scriptName: 'context.py',
    description: 'prints the context it reads from standard input and the server it was given',
    source: [
      'import json',
      'import os',
      'import sys',
      '',
      'raw = sys.stdin.read()',
      'context = json.loads(raw) if raw else None',
      'print("context:", json.dumps(context, ensure_ascii=False))',
      'print("server:", os.environ.get("dtable_web_url"))',
      'print("has api token:", bool(os.environ.get("api_token")))',
      '',
    ].join('\n'),
  },
  {
    dtableUuid: sampleBaseUuid,
    scriptName: 'fail.py',
    description: 'prints a line, then fails with an uncaught exception (return code 1)',
    source: 'print("about to fail")\nraise RuntimeError("this sample script always fails")\n',
  },
];
