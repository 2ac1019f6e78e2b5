// SHA-256 for the SDK's request signing (the clients' `sha256` option), with each HMAC key imported once.
// Signature V4 signs every request with an HMAC keyed by the day's derived signing key, the same bytes all
// day, held by the SDK as one Uint8Array. Node's createHmac imports a Uint8Array key anew on every call
// (10.7 µs per HMAC in a microbenchmark, against 2.1 µs with a KeyObject or a string key; in the controller's
// CPU profile of a burst, the import functions took about 30 µs per invoke of the 400 µs an invoke costs).
// This keeps the imported key beside the array it came from and uses it while the array still holds the same
// bytes. Everything else is as the SDK's own Sha256 (@smithy/core/checksum): the same digests, and a plain
// hash may be digested and then updated further.
import { createHash, createHmac, createSecretKey, type Hash, type Hmac, type KeyObject } from 'node:crypto';

type Source = string | ArrayBuffer | ArrayBufferView;

/** The key imported from each binary secret, with a copy of the bytes it was imported from. */
const imported = new WeakMap<object, { bytes: Buffer; key: KeyObject }>();

function bytesOf(data: Exclude<Source, string>): Buffer {
  return ArrayBuffer.isView(data) ? Buffer.from(data.buffer, data.byteOffset, data.byteLength) : Buffer.from(data);
}

/** The HMAC key for `secret`: a string as it is, binary bytes as a KeyObject imported once per array and content. */
export function hmacKey(secret: Source): string | KeyObject {
  if (typeof secret === 'string') return secret;
  const bytes = bytesOf(secret);
  const known = imported.get(secret);
  if (known && known.bytes.equals(bytes)) return known.key;
  // createSecretKey copies the bytes; the copy kept for the comparison is an array of its own (Buffer.from
  // would put it in Node's shared pool, where it could outlive the SDK's array).
  const key = createSecretKey(bytes);
  imported.set(secret, { bytes: Buffer.from(new Uint8Array(bytes).buffer), key });
  return key;
}

export class Sha256 {
  readonly digestLength = 32;
  private hash: Hash | Hmac;
  private finished = false;

  constructor(private readonly secret?: Source) {
    this.hash = this.create();
  }

  update(data: Uint8Array): void {
    if (this.finished) throw new Error('Attempted to update an already finished hash.');
    this.hash.update(data);
  }

  async digest(): Promise<Uint8Array> {
    let out: Buffer;
    if (this.secret) {
      this.finished = true;
      out = this.hash.digest();
    } else {
      out = (this.hash as Hash).copy().digest();
    }
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  }

  reset(): void {
    this.hash = this.create();
    this.finished = false;
  }

  private create(): Hash | Hmac {
    return this.secret ? createHmac('sha256', hmacKey(this.secret)) : createHash('sha256');
  }
}
