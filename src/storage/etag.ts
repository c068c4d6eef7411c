/** ETags as providers send them ("…", W/"…") → the bare value both adapters store. */
export function unquoteEtag(etag: string | undefined): string {
  return (etag ?? '').replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
}
