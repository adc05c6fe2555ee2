// Parse and validate an AsyncAPI document with the official parser; exit 1 on any error.
import { Parser, fromFile } from '@asyncapi/parser';

const { diagnostics } = await fromFile(new Parser(), process.argv[2]).parse();
const errors = diagnostics.filter((d) => d.severity === 0);
for (const d of errors) console.log(`${d.code}: ${d.message} at ${JSON.stringify(d.path)}`);
console.log(`${errors.length} error(s), ${diagnostics.length - errors.length} other diagnostic(s)`);
process.exit(errors.length ? 1 : 0);
