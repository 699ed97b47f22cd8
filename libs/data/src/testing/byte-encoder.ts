import type { TokenEncoder } from "../pretrain";

/** A trivial tokenizer for tests: UTF-8 bytes (0..255), EOS = 256. */
export const byteEncoder: TokenEncoder = {
  encode: (text: string) => Array.from(Buffer.from(text, "utf8")),
  eosId: 256,
};
