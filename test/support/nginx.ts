/**
 * The start of an nginx configuration for a test: one worker in the foreground, every file it
 * writes (pid, error log, temp paths) inside `dir`; the caller appends its `server` blocks and
 * the closing `}` of `http`.
 */
export function nginxPreamble(dir: string, workerConnections = 64): string {
  return `
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections ${workerConnections}; }
http {
  access_log off;
  client_body_temp_path ${dir}/nginx-body;
  proxy_temp_path ${dir}/nginx-proxy;
  fastcgi_temp_path ${dir}/nginx-fastcgi;
  uwsgi_temp_path ${dir}/nginx-uwsgi;
  scgi_temp_path ${dir}/nginx-scgi;
`;
}
