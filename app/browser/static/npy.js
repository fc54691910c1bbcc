// Reads a uint8 .npy array (the label's class indices) and counts each value.

/** Pixels of each value 0..255 in a .npy file of uint8 class indices. */
export function classCounts(buffer) {
  const bytes = new Uint8Array(buffer);
  const magic = String.fromCharCode(...bytes.subarray(1, 6));
  if (bytes[0] !== 0x93 || magic !== "NUMPY") throw new Error("not a .npy file");
  const major = bytes[6];
  const view = new DataView(buffer);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = (major === 1 ? 10 : 12) + headerLength;
  const header = new TextDecoder().decode(bytes.subarray(major === 1 ? 10 : 12, start));
  if (!header.includes("'|u1'")) throw new Error(`expected uint8 class indices, got ${header}`);
  const counts = new Array(256).fill(0);
  for (let i = start; i < bytes.length; i += 1) counts[bytes[i]] += 1;
  return counts;
}
