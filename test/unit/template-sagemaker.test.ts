import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { beforeAll, describe, expect, it } from "vitest";
import { loadRouteCatalog, sageMakerNames } from "#shared/config";
import { buildRouteCatalog, deploymentSettings } from "#shared/core/routes";
import { packageTemplate, parseTemplate } from "#local/template";

// The SageMaker side of the template `osls package` generates from infra/routes.yml
// (infra/sagemaker.cjs), read as CloudFormation would deploy it.

type Resource = { Type: string; Properties: Record<string, any>; DependsOn?: string[] };
type Statement = { Effect: string; Action: string[]; Resource: unknown; Condition?: unknown };

const projectDir = process.cwd();
const stage = "smk";
const prefix = `batchline-${stage}`;
const names = sageMakerNames(prefix);
const catalog = loadRouteCatalog(join(projectDir, "infra", "routes.yml"));
const generator = createRequire(import.meta.url)("../../infra/sagemaker.cjs") as {
  generate(input: { prefix: string; catalog: unknown; images: Record<string, string> }): { Resources: Record<string, Resource> };
};

let resources: Record<string, Resource>;
let template: unknown;

beforeAll(async () => {
  template = await packageTemplate({ projectDir, stage });
  resources = (template as { Resources: Record<string, Resource> }).Resources;
});

const ofType = (type: string, from: Record<string, Resource> = resources) => Object.entries(from).filter(([, r]) => r.Type === type);
const getAtt = (value: any): [string, string] => value?.["Fn::GetAtt"];
const ref = (value: any): string => value?.Ref;

/** An ARN as CloudFormation joins it, with the pseudo parameters filled in. */
function arnOf(value: unknown): string {
  if (typeof value === "string") return value;
  const pseudo: Record<string, string> = { "AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012" };
  const [separator, parts] = (value as { "Fn::Join": [string, unknown[]] })["Fn::Join"];
  return parts.map((p) => (typeof p === "string" ? p : pseudo[(p as { Ref: string }).Ref] ?? `<${JSON.stringify(p)}>`)).join(separator);
}
const arns = (resource: unknown) => (Array.isArray(resource) ? resource : [resource]).map(arnOf);
const statementsOf = (role: Resource): Statement[] => role.Properties.Policies.flatMap((p: any) => p.PolicyDocument.Statement);

function inferenceComponent(component: string): Resource {
  const found = ofType("AWS::SageMaker::InferenceComponent").find(([, r]) => r.Properties.InferenceComponentName === names.inferenceComponent(component));
  if (!found) throw new Error(`no inference component ${names.inferenceComponent(component)}`);
  return found[1];
}

function scalingOf(component: string) {
  const deployed = names.inferenceComponent(component);
  const target = ofType("AWS::ApplicationAutoScaling::ScalableTarget").find(([, r]) => r.Properties.ResourceId === `inference-component/${deployed}`);
  const policies = ofType("AWS::ApplicationAutoScaling::ScalingPolicy").filter(([, r]) => ref(r.Properties.ScalingTargetId) === target?.[0]);
  const alarm = ofType("AWS::CloudWatch::Alarm").find(([, r]) => r.Properties.Dimensions?.some((d: any) => d.Name === "InferenceComponentName" && d.Value === deployed));
  return {
    target,
    targetTracking: policies.find(([, r]) => r.Properties.PolicyType === "TargetTrackingScaling"),
    step: policies.find(([, r]) => r.Properties.PolicyType === "StepScaling"),
    alarm,
  };
}

describe("the SageMaker resources of the packaged template", () => {
  it("gives each component its inference component: model, GPUs, memory, startup timeouts and copies", () => {
    for (const component of catalog.components.values()) {
      // Act
      const ic = inferenceComponent(component.name);

      // Assess
      const settings = deploymentSettings(component);
      const endpoint = resources[getAtt(ic.Properties.EndpointName)[0]];
      expect(endpoint?.Type).toBe("AWS::SageMaker::Endpoint");
      expect(endpoint?.Properties.EndpointName).toBe(names.endpoint(component.endpointName));
      expect(ic.Properties.Specification).toEqual({
        ModelName: { "Fn::GetAtt": [expect.any(String), "ModelName"] },
        ComputeResourceRequirements: { NumberOfAcceleratorDevicesRequired: component.accelerators_per_copy, MinMemoryRequiredInMb: settings.minMemoryMb },
        StartupParameters: {
          ModelDataDownloadTimeoutInSeconds: settings.modelDataDownloadTimeoutSeconds,
          ContainerStartupHealthCheckTimeoutInSeconds: settings.containerStartupHealthCheckTimeoutSeconds,
        },
      });
      expect(ic.Properties.RuntimeConfig).toEqual({ CopyCount: component.copies });
      const config = resources[getAtt(endpoint?.Properties.EndpointConfigName)[0]];
      expect(config?.Properties.ProductionVariants.map((v: any) => v.VariantName)).toEqual([ic.Properties.VariantName]);

      const model = resources[getAtt(ic.Properties.Specification.ModelName)[0]];
      expect(model?.Type).toBe("AWS::SageMaker::Model");
      const modelId = component.engine === "vllm-openai" ? "SM_VLLM_MODEL" : "HF_MODEL_ID";
      expect(model?.Properties.PrimaryContainer.Environment[modelId]).toBe(component.model?.hf_model_id);
      expect(model?.Properties.PrimaryContainer.Image).toMatch(component.engine === "vllm-openai" ? /\.dkr\.ecr\.us-east-1\.amazonaws\.com\/vllm:/ : /\.dkr\.ecr\.us-east-1\.amazonaws\.com\/djl-inference:/);
      expect(model?.Properties.ExecutionRoleArn).toEqual(config?.Properties.ExecutionRoleArn);
    }
  });

  it("passes the engine's settings to the container: rolling batch, sequences, context length, queue", () => {
    // Act
    const environment = (component: string) => resources[getAtt(inferenceComponent(component).Properties.Specification.ModelName)[0]]?.Properties.PrimaryContainer.Environment;

    // Assess
    expect(environment("llama-2-7b-ic")).toEqual({
      HF_MODEL_ID: "meta-llama/Llama-2-7b-chat-hf",
      OPTION_ROLLING_BATCH: "vllm",
      OPTION_TENSOR_PARALLEL_DEGREE: "1",
      OPTION_MAX_ROLLING_BATCH_SIZE: "128",
      OPTION_MAX_MODEL_LEN: String(3072 + 2048),
      SERVING_JOB_QUEUE_SIZE: "1000",
    });
    expect(environment("llama-3-8b-ic")).toEqual({
      SM_VLLM_MODEL: "meta-llama/Llama-3.1-8B-Instruct",
      SM_VLLM_TENSOR_PARALLEL_SIZE: "1",
      SM_VLLM_MAX_NUM_SEQS: "256",
      SM_VLLM_MAX_MODEL_LEN: String(131_072),
    });
  });

  it("configures each endpoint with managed instance scaling, least outstanding requests and its own role", () => {
    for (const [endpointName, endpoint] of catalog.endpoints) {
      // Act
      const [, deployed] = ofType("AWS::SageMaker::Endpoint").find(([, r]) => r.Properties.EndpointName === names.endpoint(endpointName)) ?? [];
      const config = resources[getAtt(deployed?.Properties.EndpointConfigName)[0]];

      // Assess
      expect(config?.Type).toBe("AWS::SageMaker::EndpointConfig");
      expect(config?.Properties.ProductionVariants).toEqual([
        {
          VariantName: "AllTraffic",
          InstanceType: endpoint.instance_type,
          InitialInstanceCount: endpoint.instance_count,
          ManagedInstanceScaling: { Status: "ENABLED", MinInstanceCount: endpoint.min_instance_count, MaxInstanceCount: endpoint.max_instance_count },
          RoutingConfig: { RoutingStrategy: "LEAST_OUTSTANDING_REQUESTS" },
        },
      ]);
      // Inference components: the role is the endpoint configuration's, and no variant names a model.
      expect(resources[getAtt(config?.Properties.ExecutionRoleArn)[0]]?.Type).toBe("AWS::IAM::Role");
      expect(config?.Properties.ProductionVariants[0]).not.toHaveProperty("ModelName");
    }
  });

  it("registers each autoscaled component with its routes.yml minimum and maximum, once the component exists", () => {
    for (const component of catalog.components.values()) {
      if (!component.autoscaling) continue;
      // Act
      const { target } = scalingOf(component.name);

      // Assess
      expect(target?.[1].Properties).toEqual({
        ServiceNamespace: "sagemaker",
        ResourceId: `inference-component/${names.inferenceComponent(component.name)}`,
        ScalableDimension: "sagemaker:inference-component:DesiredCopyCount",
        MinCapacity: component.autoscaling.min_copies,
        MaxCapacity: component.autoscaling.max_copies,
      });
      const [icId] = ofType("AWS::SageMaker::InferenceComponent").find(([, r]) => r.Properties.InferenceComponentName === names.inferenceComponent(component.name)) ?? [];
      expect(target?.[1].DependsOn).toContain(icId);
    }
  });

  it("tracks concurrent requests per copy at the component's target, with its cooldowns", () => {
    for (const component of catalog.components.values()) {
      if (!component.autoscaling) continue;
      // Act
      const { targetTracking } = scalingOf(component.name);

      // Assess
      expect(targetTracking?.[1].Properties.TargetTrackingScalingPolicyConfiguration).toEqual({
        PredefinedMetricSpecification: { PredefinedMetricType: "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution" },
        TargetValue: component.autoscaling.target_concurrent_requests_per_copy,
        ScaleOutCooldown: component.autoscaling.scale_out_cooldown_seconds,
        ScaleInCooldown: component.autoscaling.scale_in_cooldown_seconds,
      });
    }
  });

  it("wakes a component at zero copies: an alarm on NoCapacityInvocationFailures runs a +1 step policy, as AWS's guide sets them", () => {
    for (const component of catalog.components.values()) {
      if (!component.autoscaling) continue;
      // Act
      const { step, alarm } = scalingOf(component.name);

      // Assess
      expect(step?.[1].Properties.StepScalingPolicyConfiguration).toEqual({
        AdjustmentType: "ChangeInCapacity",
        MetricAggregationType: "Maximum",
        Cooldown: 60,
        StepAdjustments: [{ MetricIntervalLowerBound: 0, ScalingAdjustment: 1 }],
      });
      expect(alarm?.[1].Properties).toMatchObject({
        AlarmActions: [{ Ref: step?.[0] }],
        Namespace: "AWS/SageMaker",
        MetricName: "NoCapacityInvocationFailures",
        Dimensions: [{ Name: "InferenceComponentName", Value: names.inferenceComponent(component.name) }],
        Statistic: "Sum",
        Period: 60,
        EvaluationPeriods: 1,
        DatapointsToAlarm: 1,
        Threshold: 1,
        ComparisonOperator: "GreaterThanOrEqualToThreshold",
      });
    }
  });

  it("lets the batcher invoke its own endpoints and inference components, and read their copies, and the metrics function read the copies, only by their deployed names", () => {
    // Act
    const sagemaker = Object.entries(resources)
      .filter(([, r]) => r.Type === "AWS::IAM::Role")
      .flatMap(([id, role]) => statementsOf(role).filter((s) => s.Action.some((a) => a.startsWith("sagemaker:"))).map((s) => ({ id, ...s })));

    // Assess
    const arn = (type: string, name: string) => `arn:aws:sagemaker:us-east-1:123456789012:${type}/${name}`;
    const endpoints = [...catalog.endpoints.keys()].map((e) => arn("endpoint", names.endpoint(e)));
    const components = [...catalog.components.keys()].map((c) => arn("inference-component", names.inferenceComponent(c)));
    expect(new Set(sagemaker.map((s) => s.id))).toEqual(new Set(["BatcherRole", "MetricsRole"]));
    const grants = (id: string) => sagemaker.filter((s) => s.id === id).map((s) => ({ actions: [...s.Action].sort(), resources: arns(s.Resource).sort() }));
    expect(grants("BatcherRole")).toEqual([
      { actions: ["sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointWithResponseStream"], resources: [...endpoints, ...components].sort() },
      { actions: ["sagemaker:DescribeInferenceComponent"], resources: [...components].sort() },
    ]);
    expect(grants("MetricsRole")).toEqual([{ actions: ["sagemaker:DescribeInferenceComponent"], resources: [...components].sort() }]);
  });

  it("gives SageMaker's execution role no wildcard action, and '*' only where AWS takes no resource", () => {
    for (const [endpointName] of catalog.endpoints) {
      // Prepare
      const [, endpoint] = ofType("AWS::SageMaker::Endpoint").find(([, e]) => e.Properties.EndpointName === names.endpoint(endpointName)) ?? [];
      const config = resources[getAtt(endpoint?.Properties.EndpointConfigName)[0]];
      const role = resources[getAtt(config?.Properties.ExecutionRoleArn)[0]] as Resource;

      // Act
      const statements = statementsOf(role);

      // Assess
      expect(role.Properties.AssumeRolePolicyDocument.Statement).toEqual([{ Effect: "Allow", Principal: { Service: ["sagemaker.amazonaws.com"] }, Action: ["sts:AssumeRole"] }]);
      for (const statement of statements) {
        expect(statement.Effect).toBe("Allow");
        for (const action of statement.Action) expect(action).not.toContain("*");
      }
      const unscoped = statements.filter((s) => arns(s.Resource).includes("*"));
      expect(unscoped.flatMap((s) => s.Action).sort()).toEqual(["cloudwatch:PutMetricData", "ecr:GetAuthorizationToken"]);
      expect(unscoped.find((s) => s.Action.includes("cloudwatch:PutMetricData"))?.Condition).toEqual({ StringLike: { "cloudwatch:namespace": ["/aws/sagemaker/*", "AWS/SageMaker"] } });
      const pull = statements.find((s) => s.Action.includes("ecr:BatchGetImage"));
      expect(arns(pull?.Resource).sort()).toEqual(["arn:aws:ecr:us-east-1:763104351884:repository/djl-inference", "arn:aws:ecr:us-east-1:763104351884:repository/vllm"]);
      // No component names S3 weights: no S3 at all.
      expect(statements.flatMap((s) => s.Action).filter((a) => a.startsWith("s3:"))).toEqual([]);
    }
  });

  it("is read by the embedded stack, which leaves the SageMaker resources alone", () => {
    // Act
    const local = parseTemplate(template);

    // Assess
    expect(local.queues.length).toBeGreaterThan(0);
    expect(ofType("AWS::SageMaker::InferenceComponent")).toHaveLength(catalog.components.size);
  });
});

describe("infra/sagemaker.cjs on other routes files", () => {
  const routesFile = (): any => parseYaml(readFileSync("infra/routes.yml", "utf8"));
  const images = {
    lmiImageUri: "763104351884.dkr.ecr.eu-west-1.amazonaws.com/djl-inference:0.36.0-lmi20.0.0-cu128-v1.0",
    vllmImageUri: "763104351884.dkr.ecr.eu-west-1.amazonaws.com/vllm:0.11.2-gpu-py312",
    tgiImageUri: "763104351884.dkr.ecr.eu-west-1.amazonaws.com/huggingface-pytorch-tgi-inference:2.4.0-tgi3.0.1-gpu-py311-cu124-ubuntu22.04",
  };
  const generate = (raw: unknown, options: { prefix?: string; images?: Record<string, string> } = {}) =>
    generator.generate({ prefix: options.prefix ?? "batchline-dev", catalog: buildRouteCatalog(raw), images: options.images ?? images }).Resources;

  it("gives a fixed fleet (no autoscaling) no scalable target, policy or alarm", () => {
    // Prepare
    const raw = routesFile();
    delete raw.components["llama-3-1b-ic"].autoscaling;

    // Act
    const generated = generate(raw);

    // Assess
    const scaled = ofType("AWS::ApplicationAutoScaling::ScalableTarget", generated).map(([, r]) => r.Properties.ResourceId);
    expect(scaled.sort()).toEqual(["inference-component/batchline-dev-llama-2-7b-ic", "inference-component/batchline-dev-llama-3-8b-ic"]);
    expect(ofType("AWS::CloudWatch::Alarm", generated)).toHaveLength(2);
  });

  it("runs a TGI component on Hugging Face's TGI image, with TGI's launcher settings from its limits", () => {
    // Prepare
    const raw = routesFile();
    raw.components["llama-2-7b-ic"].engine = "tgi";

    // Act
    const generated = generate(raw);

    // Assess
    const container = generated.Llama27bIcModel?.Properties.PrimaryContainer;
    expect(container?.Image).toBe(images.tgiImageUri);
    expect(container?.Environment).toEqual({
      HF_MODEL_ID: "meta-llama/Llama-2-7b-chat-hf",
      SM_NUM_GPUS: "1",
      MAX_INPUT_TOKENS: String(3072 + 2048 - 1),
      MAX_TOTAL_TOKENS: String(3072 + 2048),
      MAX_BATCH_TOTAL_TOKENS: String(catalog.components.get("llama-2-7b-ic")?.limits.token_budget),
      MAX_BATCH_SIZE: "128",
      MAX_CONCURRENT_REQUESTS: "1000",
    });
  });

  it("reads S3 weights with the endpoint's role, only under their prefix", () => {
    // Prepare
    const raw = routesFile();
    raw.components["llama-2-7b-ic"].model = { s3_uri: "s3://weights-bucket/llama-2-7b/" };
    raw.components["llama-3-1b-ic"].model = { s3_uri: "s3://weights-bucket/llama-3-1b/model.tar.gz", environment: { OPTION_DTYPE: "bf16" } };

    // Act
    const generated = generate(raw);

    // Assess
    const container = (id: string) => generated[id]?.Properties.PrimaryContainer;
    expect(container("Llama27bIcModel")).toMatchObject({
      ModelDataSource: { S3DataSource: { S3Uri: "s3://weights-bucket/llama-2-7b/", S3DataType: "S3Prefix", CompressionType: "None" } },
    });
    expect(container("Llama27bIcModel").Environment).not.toHaveProperty("HF_MODEL_ID");
    expect(container("Llama31bIcModel")).toMatchObject({ ModelDataUrl: "s3://weights-bucket/llama-3-1b/model.tar.gz", Environment: { OPTION_DTYPE: "bf16" } });
    const statements = statementsOf(generated.BatchlineH100ExecutionRole as Resource);
    const read = statements.find((s) => s.Action.includes("s3:GetObject"));
    expect(arns(read?.Resource)).toEqual(["arn:aws:s3:::weights-bucket/llama-2-7b/*", "arn:aws:s3:::weights-bucket/llama-3-1b/model.tar.gz"]);
    const list = statements.find((s) => s.Action.includes("s3:ListBucket"));
    expect({ resource: arns(list?.Resource), condition: list?.Condition }).toEqual({
      resource: ["arn:aws:s3:::weights-bucket"],
      condition: { StringLike: { "s3:prefix": ["llama-2-7b/*"] } },
    });
  });

  it("sizes memory and startup timeouts from the routes file when it says", () => {
    // Prepare
    const raw = routesFile();
    Object.assign(raw.components["llama-2-7b-ic"], { min_memory_mb: 65536, model_download_timeout_seconds: 1200, startup_health_check_timeout_seconds: 900 });

    // Act
    const specification = generate(raw).Llama27bIcInferenceComponent?.Properties.Specification;

    // Assess
    expect(specification.ComputeResourceRequirements.MinMemoryRequiredInMb).toBe(65536);
    expect(specification.StartupParameters).toEqual({ ModelDataDownloadTimeoutInSeconds: 1200, ContainerStartupHealthCheckTimeoutInSeconds: 900 });
  });

  it.each([
    {
      problem: "a component without a model",
      change: (raw: any) => delete raw.components["llama-3-8b-ic"].model,
      options: {},
      says: "components llama-3-8b-ic name no model",
    },
    {
      problem: "a name over SageMaker's 63 characters with the stage prefix",
      change: (raw: any) => {
        raw.components["llama-3-1b-ic-with-a-rather-long-name-for-a-component"] = raw.components["llama-3-1b-ic"];
        delete raw.components["llama-3-1b-ic"];
        raw.routes["llama-3-1b"].components = ["llama-3-1b-ic-with-a-rather-long-name-for-a-component"];
      },
      options: {},
      says: 'is deployed as "batchline-dev-llama-3-1b-ic-with-a-rather-long-name-for-a-component", 67 characters; SageMaker allows 63',
    },
    {
      problem: "an image that is not in ECR",
      change: () => undefined,
      options: { images: { ...images, vllmImageUri: "vllm/vllm-openai:latest" } },
      says: 'params.vllmImageUri: "vllm/vllm-openai:latest" is not an Amazon ECR image URI',
    },
    {
      problem: "no image for an engine",
      change: () => undefined,
      options: { images: { lmiImageUri: images.lmiImageUri } },
      says: "serverless.yml params: no vllmImageUri",
    },
  ])("refuses $problem", ({ change, options, says }) => {
    // Prepare
    const raw = routesFile();
    change(raw);

    // Act & Assess
    expect(() => generate(raw, options)).toThrow(says);
  });
});
