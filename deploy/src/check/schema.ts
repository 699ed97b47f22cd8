/**
 * Every object against the Kubernetes OpenAPI schemas, offline, with kubernetes-models' validators
 * (types, required fields, enums, formats): `replicas: "2"` is "spec.replicas must be integer".
 * Kinds the platform does not use are refused, so a typo in `kind` is caught too.
 */
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Namespace } from "kubernetes-models/v1/Namespace";
import { PersistentVolumeClaim } from "kubernetes-models/v1/PersistentVolumeClaim";
import { Service } from "kubernetes-models/v1/Service";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import { Secret } from "kubernetes-models/v1/Secret";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { StatefulSet } from "kubernetes-models/apps/v1/StatefulSet";
import { Job } from "kubernetes-models/batch/v1/Job";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import { Role } from "kubernetes-models/rbac.authorization.k8s.io/v1/Role";
import { RoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding";
import { type Doc, type Problem, whereOf } from "./load";

type Validating = new (data: never) => { validate(): void };

/** apiVersion + kind -> model class. */
const MODELS: Record<string, Validating> = Object.fromEntries(
  (
    [
      ["v1", "ConfigMap", ConfigMap],
      ["v1", "Namespace", Namespace],
      ["v1", "PersistentVolumeClaim", PersistentVolumeClaim],
      ["v1", "Service", Service],
      ["v1", "ServiceAccount", ServiceAccount],
      ["v1", "Secret", Secret],
      ["apps/v1", "Deployment", Deployment],
      ["apps/v1", "StatefulSet", StatefulSet],
      ["batch/v1", "Job", Job],
      ["autoscaling/v2", "HorizontalPodAutoscaler", HorizontalPodAutoscaler],
      ["networking.k8s.io/v1", "NetworkPolicy", NetworkPolicy],
      ["rbac.authorization.k8s.io/v1", "Role", Role],
      ["rbac.authorization.k8s.io/v1", "RoleBinding", RoleBinding],
    ] as [string, string, Validating][]
  ).map(([v, k, m]) => [`${v}/${k}`, m]),
);

/** `data/spec/replicas must be integer` -> `spec.replicas must be integer`. */
function tidy(message: string): string[] {
  return message.split(/, (?=data[/ ])/).map((m) => m.replace(/^data\/?/, "").replace(/\//g, ".").replace(/^ /, ""));
}

/** Schema problems of each document. */
export function checkSchemas(docs: readonly Doc[]): Problem[] {
  const problems: Problem[] = [];
  for (const d of docs) {
    const o = d.obj;
    const where = whereOf(d);
    if (typeof o !== "object" || Array.isArray(o)) {
      problems.push({ where, message: "a manifest document must be a mapping" });
      continue;
    }
    const Model = MODELS[`${o.apiVersion}/${o.kind}`];
    if (!Model) {
      problems.push({ where, message: `unknown apiVersion/kind "${o.apiVersion}/${o.kind}" (known: ${Object.keys(MODELS).join(", ")})` });
      continue;
    }
    if (!o.metadata?.name) problems.push({ where, message: "metadata.name is required" });
    try {
      new Model(o as never).validate();
    } catch (err) {
      for (const m of tidy((err as Error).message)) problems.push({ where, message: `schema: ${m}` });
    }
  }
  return problems;
}
