#!/usr/bin/env python3
"""Static checks of the deploy/ stack that need no Docker.

Subcommands (each prints what it checked and exits 1 on any problem):

  compose     compose.yaml parses, matches the Compose JSON schema (--schema),
              pins every image to a version, and every host file or directory
              it mounts exists; named volumes and depends_on targets exist.
  grafana     provisioning files parse; each is mounted where Grafana reads it;
              the dashboard provider's path is a mount of a directory holding
              the dashboards; data source uids are unique and every uid that a
              dashboard or a data source link refers to exists.
  prometheus  rule_files resolve the same way on the host and in the container;
              scrape targets are compose services on the ports those services
              listen on; Tempo's remote_write has the receiver it needs.
  collector   for otel-collector.yaml and every document of
              otel-collector-loadbalancing.yaml: pipelines only use defined
              components, every defined component is used, memory_limiter comes
              first and batch last, listeners bind 0.0.0.0, the exporters point
              at compose services / ports that exist.
  tempo       tempo.yaml: OTLP receiver and HTTP port match what the Collector
              and Grafana use; storage paths live on the mounted volume.
  queries     write the Tempo data source's trace-to-metrics queries (with
              $__tags filled in) as recording rules to --rules-file, for
              `promtool check rules`; fail on unknown metric names in them and
              in the alert rules.

Usage: check_stack.py [--deploy-dir DIR] SUBCOMMAND [--schema FILE] [--rules-file FILE]
Needs PyYAML (and jsonschema for `compose --schema`).
"""

import argparse
import json
import os
import posixpath
import re
import sys

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import queries  # noqa: E402  (same directory, standard library only)


class Checker:
    def __init__(self, deploy_dir):
        self.dir = os.path.abspath(deploy_dir)
        self.errors = []
        self.notes = []
        self._compose = None

    # -- helpers -----------------------------------------------------------
    def err(self, msg):
        self.errors.append(msg)

    def ok(self, msg):
        self.notes.append(msg)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def load_yaml(self, rel, all_docs=False):
        with open(self.path(rel), encoding="utf-8") as f:
            if all_docs:
                return [d for d in yaml.safe_load_all(f) if d is not None]
            return yaml.safe_load(f)

    @property
    def compose(self):
        if self._compose is None:
            self._compose = self.load_yaml("compose.yaml")
        return self._compose

    def services(self):
        return self.compose.get("services") or {}

    def mounts(self, service):
        """[(host_abs_path or None, container_path, volume_name or None)]"""
        out = []
        for v in (self.services().get(service) or {}).get("volumes") or []:
            if isinstance(v, str):
                parts = v.split(":")
                src, dst = parts[0], parts[1] if len(parts) > 1 else parts[0]
                kind = "bind" if src.startswith((".", "/", "~")) else "volume"
            else:
                src, dst, kind = v.get("source"), v.get("target"), v.get("type", "volume")
            if kind == "bind":
                out.append((os.path.normpath(os.path.join(self.dir, src)), dst, None))
            else:
                out.append((None, dst, src))
        return out

    def host_path_of(self, service, container_path):
        """Host path that a container path of `service` comes from (bind mounts)."""
        best = None
        for host, dst, _vol in self.mounts(service):
            dst = dst.rstrip("/")
            if host and (container_path == dst or container_path.startswith(dst + "/")):
                if best is None or len(dst) > len(best[1]):
                    best = (host, dst)
        if best is None:
            return None
        host, dst = best
        rest = container_path[len(dst):].lstrip("/")
        return os.path.join(host, rest) if rest else host

    def on_volume(self, service, container_path):
        for _host, dst, vol in self.mounts(service):
            if vol and (container_path == dst or container_path.startswith(dst.rstrip("/") + "/")):
                return vol
        return None

    def published(self, service):
        """{container_port: host_port} of a service."""
        out = {}
        for p in (self.services().get(service) or {}).get("ports") or []:
            if isinstance(p, dict):
                out[int(p["target"])] = int(p.get("published", p["target"]))
                continue
            parts = str(p).split("/")[0].split(":")
            out[int(parts[-1])] = int(parts[-2]) if len(parts) > 1 else int(parts[-1])
        return out

    def service_of_image(self, fragment):
        for name, svc in self.services().items():
            if fragment in (svc or {}).get("image", "") and "init" not in name:
                return name
        return None

    def check_endpoint(self, what, endpoint, port_of_service):
        """endpoint 'host:port' or URL must name a compose service and its port."""
        m = re.match(r"^(?:\w+://)?([^/:]+):(\d+)", endpoint)
        if not m:
            self.err(f"{what}: cannot parse endpoint {endpoint!r}")
            return
        host, port = m.group(1), int(m.group(2))
        if host in ("localhost", "127.0.0.1", "host.docker.internal"):
            return
        if host not in self.services():
            self.err(f"{what}: {endpoint}: host {host!r} is not a compose service")
            return
        expected = port_of_service.get(host)
        if expected is not None and port not in expected:
            self.err(f"{what}: {endpoint}: {host} listens on {sorted(expected)}, not {port}")

    def listen_ports(self):
        """Ports each compose service listens on, read from its own config."""
        ports = {}
        col = self.service_of_image("opentelemetry-collector")
        if col:
            cfg = self.load_yaml("otel-collector.yaml")
            ports[col] = set(collector_listen_ports(cfg))
        tempo = self.service_of_image("grafana/tempo")
        if tempo:
            cfg = self.load_yaml("tempo.yaml")
            p = {int((cfg.get("server") or {}).get("http_listen_port", 3200))}
            for proto in ((((cfg.get("distributor") or {}).get("receivers") or {})
                           .get("otlp") or {}).get("protocols") or {}).values():
                ep = (proto or {}).get("endpoint", "")
                if ":" in ep:
                    p.add(int(ep.rsplit(":", 1)[1]))
            ports[tempo] = p
        prom = self.service_of_image("prom/prometheus")
        if prom:
            ports[prom] = {9090}
        graf = self.service_of_image("grafana/grafana")
        if graf:
            ports[graf] = {3000}
        return ports

    # -- compose -----------------------------------------------------------
    def check_compose(self, schema_path):
        c = self.compose
        if not isinstance(c, dict) or not c.get("services"):
            self.err("compose.yaml: no services")
            return
        if schema_path:
            import jsonschema

            with open(schema_path, encoding="utf-8") as f:
                schema = json.load(f)
            validator = jsonschema.Draft201909Validator(schema)
            errs = sorted(validator.iter_errors(c), key=lambda e: list(e.path))
            for e in errs:
                loc = "/".join(str(p) for p in e.path) or "(top)"
                self.err(f"compose.yaml: schema: {loc}: {e.message}")
            if not errs:
                self.ok(f"compose.yaml matches the Compose schema ({os.path.basename(schema_path)})")
        declared = set((c.get("volumes") or {}).keys())
        n_mounts = 0
        for name, svc in c["services"].items():
            svc = svc or {}
            image = svc.get("image", "")
            tag = image.rsplit(":", 1)[1] if ":" in image.split("/")[-1] else ""
            if not tag or tag == "latest" or not re.search(r"\d", tag):
                self.err(f"compose.yaml: {name}: image {image!r} is not pinned to a version")
            for host, dst, vol in self.mounts(name):
                n_mounts += 1
                if host and not os.path.exists(host):
                    self.err(f"compose.yaml: {name}: mounted host path {host} does not exist")
                if vol and vol not in declared:
                    self.err(f"compose.yaml: {name}: volume {vol!r} not declared under volumes:")
            deps = svc.get("depends_on") or []
            for dep in (deps.keys() if isinstance(deps, dict) else deps):
                if dep not in c["services"]:
                    self.err(f"compose.yaml: {name}: depends_on unknown service {dep!r}")
            for ef in ([svc["env_file"]] if isinstance(svc.get("env_file"), str)
                       else svc.get("env_file") or []):
                if not os.path.exists(self.path(ef if isinstance(ef, str) else ef["path"])):
                    self.err(f"compose.yaml: {name}: env_file {ef} does not exist")
            # A --config=... / -config.file=... argument must be a mounted file.
            cmd = svc.get("command") or []
            for arg in ([cmd] if isinstance(cmd, str) else cmd):
                m = re.match(r"^--?config(?:\.file)?=(/.+)$", str(arg))
                if m:
                    host = self.host_path_of(name, m.group(1))
                    if not host or not os.path.isfile(host):
                        self.err(f"compose.yaml: {name}: {arg}: not a mounted file")
        for need in ("otel-collector", "tempo", "prometheus", "grafana"):
            if need not in c["services"]:
                self.err(f"compose.yaml: service {need!r} missing")
        expected = {("otel-collector", 4317), ("otel-collector", 4318), ("grafana", 3000),
                    ("prometheus", 9090), ("tempo", 3200)}
        for svc, port in sorted(expected):
            if self.published(svc).get(port) != port:
                self.err(f"compose.yaml: {svc}: port {port} is not published as {port}")
        self.ok(f"compose.yaml: {len(c['services'])} services, {n_mounts} mounts, images pinned")

    # -- grafana -----------------------------------------------------------
    def check_grafana(self):
        g = self.service_of_image("grafana/grafana")
        if not g:
            self.err("compose.yaml: no grafana/grafana service")
            return
        env = (self.services()[g] or {}).get("environment") or {}
        if isinstance(env, list):
            env = dict(e.split("=", 1) for e in env)
        prov = env.get("GF_PATHS_PROVISIONING", "/etc/grafana/provisioning")
        uids = {}
        for kind in ("datasources", "dashboards"):
            host_dir = self.host_path_of(g, f"{prov}/{kind}")
            if not host_dir or not os.path.isdir(host_dir):
                self.err(f"grafana: {prov}/{kind} is not mounted from a host directory")
                continue
            files = sorted(f for f in os.listdir(host_dir) if f.endswith((".yaml", ".yml")))
            if not files:
                self.err(f"grafana: no provisioning files in {host_dir}")
            for fname in files:
                rel = os.path.relpath(os.path.join(host_dir, fname), self.dir)
                doc = self.load_yaml(rel)
                if not isinstance(doc, dict) or doc.get("apiVersion") != 1:
                    self.err(f"{rel}: apiVersion: 1 expected")
                    continue
                if kind == "datasources":
                    for ds in doc.get("datasources") or []:
                        uid = ds.get("uid")
                        if not uid or not ds.get("type") or not ds.get("name"):
                            self.err(f"{rel}: data source without name/type/uid: {ds}")
                            continue
                        if uid in uids:
                            self.err(f"{rel}: duplicate data source uid {uid!r}")
                        uids[uid] = ds
                        if ds.get("url"):
                            self.check_endpoint(f"{rel}: {ds['name']} url", ds["url"],
                                                self.listen_ports())
                else:
                    for p in doc.get("providers") or []:
                        path = (p.get("options") or {}).get("path")
                        host = self.host_path_of(g, path) if path else None
                        if not host or not os.path.isdir(host):
                            self.err(f"{rel}: provider {p.get('name')}: path {path} "
                                     "is not a mounted host directory")
                            continue
                        n = len([f for f in os.listdir(host) if f.endswith(".json")])
                        if not n:
                            self.err(f"{rel}: no dashboards (*.json) in {host}")
                        self.ok(f"{rel}: provider {p.get('name')}: {path} <- "
                                f"{os.path.relpath(host, self.dir)} ({n} dashboards)")
        home = env.get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
        if home:
            host = self.host_path_of(g, home)
            if not host or not os.path.isfile(host):
                self.err(f"grafana: GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH {home} is not a mounted file")
        # Links between data sources.
        for uid, ds in uids.items():
            jd = ds.get("jsonData") or {}
            refs = [d.get("datasourceUid") for d in jd.get("exemplarTraceIdDestinations") or []]
            refs += [(jd.get(k) or {}).get("datasourceUid")
                     for k in ("tracesToMetrics", "serviceMap", "tracesToLogsV2")]
            for r in filter(None, refs):
                if r not in uids:
                    self.err(f"grafana: data source {uid!r} links to unknown uid {r!r}")
        if "tempo" in {d["type"] for d in uids.values()}:
            t = next(d for d in uids.values() if d["type"] == "tempo")
            t2m = (t.get("jsonData") or {}).get("tracesToMetrics") or {}
            target = uids.get(t2m.get("datasourceUid"), {})
            if target.get("type") != "prometheus":
                self.err("grafana: Tempo tracesToMetrics must point at the Prometheus data source")
            prom = [d for d in uids.values() if d["type"] == "prometheus"]
            if prom and not any(uids.get(x.get("datasourceUid"), {}).get("type") == "tempo"
                                for x in (prom[0].get("jsonData") or {}).get(
                                    "exemplarTraceIdDestinations") or []):
                self.err("grafana: Prometheus exemplarTraceIdDestinations must point at Tempo")
        # Dashboards: uids, panel ids, layout, data source references.
        dash_dir = self.path("grafana", "dashboards")
        seen_uids = {}
        for fname in sorted(os.listdir(dash_dir)):
            if not fname.endswith(".json"):
                continue
            rel = f"grafana/dashboards/{fname}"
            with open(self.path(rel), encoding="utf-8") as f:
                d = json.load(f)
            if d.get("uid") in seen_uids:
                self.err(f"{rel}: uid {d.get('uid')!r} also used by {seen_uids[d['uid']]}")
            seen_uids[d.get("uid")] = rel
            if not 36 <= int(d.get("schemaVersion", 0)) <= 41:
                self.err(f"{rel}: schemaVersion {d.get('schemaVersion')} outside 36..41 "
                         "(Grafana 10-12)")
            ids = set()
            n = 0
            for p in _walk(d.get("panels")):
                n += 1
                if p.get("id") in ids:
                    self.err(f"{rel}: duplicate panel id {p.get('id')}")
                ids.add(p.get("id"))
                gp = p.get("gridPos") or {}
                if gp.get("x", 0) + gp.get("w", 0) > 24:
                    self.err(f"{rel}: panel {p.get('id')} is wider than the 24-column grid")
                for ds in [p.get("datasource")] + [t.get("datasource") for t in p.get("targets") or []]:
                    self._check_ds_ref(rel, f"panel {p.get('id')}", ds, uids)
            for v in (d.get("templating") or {}).get("list") or []:
                self._check_ds_ref(rel, f"variable {v.get('name')}", v.get("datasource"), uids)
            self.ok(f"{rel}: {n} panels, data source uids resolve")
        self.ok(f"grafana: data sources {sorted(uids)}")

    def _check_ds_ref(self, rel, where, ds, uids):
        if not ds or not isinstance(ds, dict):
            return
        uid = ds.get("uid", "")
        if uid in ("-- Grafana --", "grafana", "-- Mixed --", "-- Dashboard --") or uid.startswith("$"):
            return
        if uid not in uids:
            self.err(f"{rel}: {where}: unknown data source uid {uid!r}")
        elif ds.get("type") and ds["type"] != uids[uid]["type"]:
            self.err(f"{rel}: {where}: uid {uid!r} is a {uids[uid]['type']}, not {ds['type']}")

    # -- prometheus --------------------------------------------------------
    def check_prometheus(self):
        p = self.service_of_image("prom/prometheus")
        if not p:
            self.err("compose.yaml: no prom/prometheus service")
            return
        cfg = self.load_yaml("prometheus.yml")
        cmd = (self.services()[p] or {}).get("command") or []
        cfile = next((a.split("=", 1)[1] for a in cmd if a.startswith("--config.file=")),
                     "/etc/prometheus/prometheus.yml")
        host_cfg = self.host_path_of(p, cfile)
        if os.path.normpath(host_cfg or "") != self.path("prometheus.yml"):
            self.err(f"compose.yaml: {p}: {cfile} is not mounted from prometheus.yml")
        for rf in cfg.get("rule_files") or []:
            in_container = posixpath.normpath(posixpath.join(posixpath.dirname(cfile), rf))
            on_host = os.path.normpath(os.path.join(self.dir, rf))
            mounted = self.host_path_of(p, in_container)
            if not os.path.isfile(on_host):
                self.err(f"prometheus.yml: rule file {rf} not found next to prometheus.yml")
            if os.path.normpath(mounted or "") != on_host:
                self.err(f"prometheus.yml: rule file {rf} is {in_container} in the container, "
                         f"which is not mounted from {os.path.relpath(on_host, self.dir)}")
        ports = self.listen_ports()
        jobs = {}
        for sc in cfg.get("scrape_configs") or []:
            jobs[sc["job_name"]] = sc
            for st in sc.get("static_configs") or []:
                for t in st.get("targets") or []:
                    self.check_endpoint(f"prometheus.yml: job {sc['job_name']}", t, ports)
        col = jobs.get("otel-collector")
        if not col:
            self.err("prometheus.yml: no otel-collector scrape job")
        elif not col.get("honor_labels"):
            self.err("prometheus.yml: job otel-collector needs honor_labels: true "
                     "(keeps job/instance from service.name / service.instance.id)")
        exp = (self.load_yaml("otel-collector.yaml").get("exporters") or {}).get("prometheus")
        if col and exp:
            port = int(exp["endpoint"].rsplit(":", 1)[1])
            targets = [t for st in col.get("static_configs") or [] for t in st.get("targets") or []]
            if not any(t.endswith(f":{port}") for t in targets):
                self.err(f"prometheus.yml: job otel-collector does not scrape the prometheus "
                         f"exporter port {port}")
        # The commented-out direct job must stay in its BEGIN/END markers.
        with open(self.path("prometheus.yml"), encoding="utf-8") as f:
            text = f.read()
        if not re.search(r"# BEGIN otel-agent-direct\n(.*\n)*?.*otel-agent-direct.*\n(.*\n)*?"
                         r".*host\.docker\.internal:9464.*\n(.*\n)*?\s*# END otel-agent-direct", text):
            self.err("prometheus.yml: otel-agent-direct block (BEGIN/END markers) not found")
        tempo_cfg = self.load_yaml("tempo.yaml")
        rw = (((tempo_cfg.get("metrics_generator") or {}).get("storage") or {})
              .get("remote_write") or [])
        if rw and "--web.enable-remote-write-receiver" not in cmd:
            self.err("tempo.yaml remote-writes to Prometheus, which lacks "
                     "--web.enable-remote-write-receiver")
        for r in rw:
            self.check_endpoint("tempo.yaml: metrics_generator remote_write", r["url"], ports)
        if not any("exemplar-storage" in a for a in cmd):
            self.err("compose.yaml: prometheus needs --enable-feature=exemplar-storage")
        self.ok(f"prometheus.yml: jobs {sorted(jobs)}; rule files and targets resolve")

    # -- collector ---------------------------------------------------------
    def check_collector(self):
        ports = self.listen_ports()
        docs = [("otel-collector.yaml", self.load_yaml("otel-collector.yaml"))]
        lb = "otel-collector-loadbalancing.yaml"
        if os.path.exists(self.path(lb)):
            for i, d in enumerate(self.load_yaml(lb, all_docs=True)):
                docs.append((f"{lb} (document {i + 1})", d))
        for name, cfg in docs:
            self._check_collector_config(name, cfg, ports if name == "otel-collector.yaml" else None)
        col = self.service_of_image("opentelemetry-collector")
        pub = self.published(col) if col else {}
        main = docs[0][1]
        for proto, port in (("grpc", 4317), ("http", 4318)):
            ep = (((main.get("receivers") or {}).get("otlp") or {}).get("protocols") or {}) \
                .get(proto, {}) or {}
            if not str(ep.get("endpoint", "")).endswith(f":{port}") or port not in pub:
                self.err(f"otel-collector.yaml: OTLP {proto} must listen on :{port} and be published")

    def _check_collector_config(self, name, cfg, ports):
        kinds = ("receivers", "processors", "exporters", "connectors", "extensions")
        defined = {k: set((cfg.get(k) or {}).keys()) for k in kinds}
        service = cfg.get("service") or {}
        used = {k: set() for k in kinds}
        for ext in service.get("extensions") or []:
            used["extensions"].add(ext)
            if ext not in defined["extensions"]:
                self.err(f"{name}: service.extensions: {ext!r} is not defined")
        pipelines = service.get("pipelines") or {}
        if not pipelines:
            self.err(f"{name}: no pipelines")
        for pname, pl in pipelines.items():
            if pname.split("/")[0] not in ("traces", "metrics", "logs", "profiles"):
                self.err(f"{name}: pipeline {pname!r}: unknown signal")
            for role in ("receivers", "processors", "exporters"):
                for comp in pl.get(role) or []:
                    if comp in defined[role]:
                        used[role].add(comp)
                    elif role != "processors" and comp in defined["connectors"]:
                        used["connectors"].add(comp)
                    else:
                        self.err(f"{name}: pipeline {pname}: {role[:-1]} {comp!r} is not defined")
            if not pl.get("receivers") or not pl.get("exporters"):
                self.err(f"{name}: pipeline {pname}: needs receivers and exporters")
            procs = [p.split("/")[0] for p in pl.get("processors") or []]
            if "memory_limiter" in procs and procs[0] != "memory_limiter":
                self.err(f"{name}: pipeline {pname}: memory_limiter must be the first processor")
            if "batch" in procs and procs[-1] != "batch":
                self.err(f"{name}: pipeline {pname}: batch must be the last processor")
            if "memory_limiter" not in procs:
                self.err(f"{name}: pipeline {pname}: no memory_limiter processor")
        for k in kinds:
            for comp in sorted(defined[k] - used[k]):
                self.err(f"{name}: {k[:-1]} {comp!r} is defined but not used")
        if "health_check" not in {e.split("/")[0] for e in used["extensions"]}:
            self.err(f"{name}: health_check extension not enabled")
        for ep in collector_listen_endpoints(cfg):
            if not ep.startswith("0.0.0.0:"):
                self.err(f"{name}: listener {ep!r} should bind 0.0.0.0 inside a container")
        if ports is not None:
            for ename, exp in (cfg.get("exporters") or {}).items():
                if ename.split("/")[0] in ("otlp", "otlphttp") and (exp or {}).get("endpoint"):
                    self.check_endpoint(f"{name}: exporter {ename}", exp["endpoint"], ports)
        self.ok(f"{name}: pipelines {sorted(pipelines)} reference only defined components")

    # -- tempo -------------------------------------------------------------
    def check_tempo(self):
        t = self.service_of_image("grafana/tempo")
        cfg = self.load_yaml("tempo.yaml")
        if not t:
            self.err("compose.yaml: no grafana/tempo service")
            return
        port = int((cfg.get("server") or {}).get("http_listen_port", 3200))
        if self.published(t).get(port) is None:
            self.err(f"tempo.yaml: http_listen_port {port} is not published by compose")
        protos = ((((cfg.get("distributor") or {}).get("receivers") or {}).get("otlp") or {})
                  .get("protocols") or {})
        for proto, conf in protos.items():
            ep = (conf or {}).get("endpoint", "")
            if not ep.startswith("0.0.0.0:"):
                self.err(f"tempo.yaml: OTLP {proto} endpoint {ep!r} should bind 0.0.0.0")
        col = self.load_yaml("otel-collector.yaml")
        tempo_eps = [e.get("endpoint", "") for n, e in (col.get("exporters") or {}).items()
                     if n.split("/")[0] == "otlp" and e and e.get("endpoint", "").startswith(t + ":")]
        grpc_port = (protos.get("grpc") or {}).get("endpoint", ":").rsplit(":", 1)[1]
        if not tempo_eps:
            self.err("otel-collector.yaml: no otlp exporter sends to Tempo")
        for ep in tempo_eps:
            if ep.rsplit(":", 1)[1] != grpc_port:
                self.err(f"otel-collector.yaml: exporter endpoint {ep} but Tempo's OTLP gRPC "
                         f"receiver listens on {grpc_port}")
        paths = []

        def collect(node, key=""):
            if isinstance(node, dict):
                for k, v in node.items():
                    collect(v, k)
            elif isinstance(node, list):
                for v in node:
                    collect(v, key)
            elif key == "path" and isinstance(node, str):
                paths.append(node)

        collect(cfg)
        for pth in paths:
            if not self.on_volume(t, pth):
                self.err(f"tempo.yaml: {pth} is not on a named volume (lost on restart)")
        self.ok(f"tempo.yaml: HTTP :{port}, OTLP {sorted(protos)}, {len(paths)} storage paths on volumes")

    # -- queries -----------------------------------------------------------
    def check_queries(self, rules_file):
        out = []
        for fname in sorted(os.listdir(self.path("grafana", "provisioning", "datasources"))):
            rel = f"grafana/provisioning/datasources/{fname}"
            for ds in (self.load_yaml(rel) or {}).get("datasources") or []:
                t2m = (ds.get("jsonData") or {}).get("tracesToMetrics") or {}
                for q in t2m.get("queries") or []:
                    # Grafana reads "$$" as a literal "$" in provisioning files.
                    expr = q["query"].replace("$$", "$").replace("$__tags", 'job="demo"')
                    out.append((f"{rel}: {ds['name']}: {q['name']}", expr))
        rules = self.load_yaml("prometheus/alerts.yml")
        for g in rules.get("groups") or []:
            for r in g.get("rules") or []:
                out.append((f"prometheus/alerts.yml: {r.get('alert') or r.get('record')}", r["expr"]))
        for where, expr in out:
            unknown = queries.unknown_metrics(expr)
            if unknown:
                self.err(f"{where}: unknown metric(s) {', '.join(unknown)}")
        if rules_file:
            lines = ["groups:", "  - name: datasource_queries", "    rules:"]
            n = 0
            for i, (where, expr) in enumerate(out):
                if where.startswith("grafana/"):
                    lines += [f"      # {where}", f"      - record: datasource_query_{i}",
                              f"        expr: {json.dumps(expr)}"]
                    n += 1
            with open(rules_file, "w", encoding="utf-8") as f:
                f.write("\n".join(lines) + "\n")
            self.ok(f"wrote {n} data source queries to {rules_file}")
        self.ok(f"{len(out)} alert / data source expressions use only otel-agent metrics")


def collector_listen_endpoints(cfg):
    eps = []
    for r in (cfg.get("receivers") or {}).values():
        for proto in ((r or {}).get("protocols") or {}).values():
            if (proto or {}).get("endpoint"):
                eps.append(proto["endpoint"])
    for e in list((cfg.get("extensions") or {}).values()) + [
            (cfg.get("exporters") or {}).get("prometheus")]:
        if (e or {}).get("endpoint"):
            eps.append(e["endpoint"])
    return eps


def collector_listen_ports(cfg):
    ports = [int(e.rsplit(":", 1)[1]) for e in collector_listen_endpoints(cfg)]
    for reader in ((((cfg.get("service") or {}).get("telemetry") or {}).get("metrics") or {})
                   .get("readers") or []):
        prom = ((reader.get("pull") or {}).get("exporter") or {}).get("prometheus") or {}
        if prom.get("port"):
            ports.append(int(prom["port"]))
    return ports


def _walk(panels):
    for p in panels or []:
        yield p
        yield from _walk(p.get("panels"))


def main(argv=None):
    ap = argparse.ArgumentParser(description="Static checks of the deploy/ stack.")
    ap.add_argument("--deploy-dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    ap.add_argument("command", choices=["compose", "grafana", "prometheus", "collector", "tempo", "queries"])
    ap.add_argument("--schema", help="Compose JSON schema file (compose)")
    ap.add_argument("--rules-file", help="output rules file (queries)")
    args = ap.parse_args(argv)
    c = Checker(args.deploy_dir)
    try:
        {
            "compose": lambda: c.check_compose(args.schema),
            "grafana": c.check_grafana,
            "prometheus": c.check_prometheus,
            "collector": c.check_collector,
            "tempo": c.check_tempo,
            "queries": lambda: c.check_queries(args.rules_file),
        }[args.command]()
    except (OSError, yaml.YAMLError, ValueError, KeyError, TypeError, AttributeError) as e:
        c.err(f"{args.command}: {type(e).__name__}: {e}")
    for n in c.notes:
        print(f"  ok: {n}")
    for e in c.errors:
        print(f"  FAIL: {e}")
    return 1 if c.errors else 0


if __name__ == "__main__":
    sys.exit(main())
