/** What the drop-in layer does not do yet fails loudly, never silently. */
export function unsupported(feature: string): Error & { code: string } {
  const err = new Error(`muxnet does not support ${feature} yet`) as Error & { code: string };
  err.code = 'ERR_MUXNET_UNSUPPORTED';
  return err;
}
