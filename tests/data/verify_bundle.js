// Verifies a Sigstore bundle offline with sigstore-js (npm @sigstore/verify and
// @sigstore/bundle, which scripts/testbed installs), an implementation dpy did not write:
//
//   node verify_bundle.js BUNDLE.json PUBLIC.pem SUBJECT-DIGEST
//
// The only trust is the public key, offered whatever hint the bundle gives, so that a
// bundle by another key fails on its signature, not on its hint. A key-signed bundle
// has no log entry or timestamp, so none is required. The verifier checks the DSSE
// signature only; the statement's subject is checked here against SUBJECT-DIGEST.
// Prints the predicate type; exits 1 with the reason when anything fails.
'use strict';
const fs = require('fs');
const crypto = require('crypto');
const { bundleFromJSON } = require('@sigstore/bundle');
const { Verifier, toSignedEntity } = require('@sigstore/verify');

function fail(why) {
  console.error(`refused: ${why}`);
  process.exit(1);
}

const [bundlePath, keyPath, digest] = process.argv.slice(2);
if (!digest) fail('usage: verify_bundle.js BUNDLE.json PUBLIC.pem SUBJECT-DIGEST');
let bundle;
try {
  bundle = bundleFromJSON(JSON.parse(fs.readFileSync(bundlePath, 'utf8')));
} catch (e) {
  fail(`not a bundle: ${e.message}`);
}
const key = crypto.createPublicKey(fs.readFileSync(keyPath));
const trust = {
  certificateAuthorities: [],
  timestampAuthorities: [],
  tlogs: [],
  ctlogs: [],
  publicKey: () => ({ publicKey: key, validFor: () => true }),
};
const verifier = new Verifier(trust, {
  tlogThreshold: 0,
  ctlogThreshold: 0,
  tsaThreshold: 0,
  timestampThreshold: 0,
});
try {
  verifier.verify(toSignedEntity(bundle));
} catch (e) {
  fail(`${e.code || e.name}: ${e.message}`);
}
const statement = JSON.parse(Buffer.from(bundle.content.dsseEnvelope.payload).toString('utf8'));
const hex = digest.replace(/^sha256:/, '');
if (!(statement.subject || []).some((s) => s.digest && s.digest.sha256 === hex)) {
  fail(`the statement is not about ${digest}`);
}
console.log(statement.predicateType);
