// Turns infra/routes.yml into the SageMaker side of the stack, as serverless-routes.cjs does the
// queues: per endpoint an execution role, an endpoint configuration and the endpoint; per
// component a model, its inference component and, with `autoscaling`, its Application Auto
// Scaling (scalable target, target tracking, and the step policy with its alarm that wakes it from
// zero copies). Resolved by osls through ${file(infra/sagemaker.cjs):resources}; CommonJS because
// osls require()s it. The routes file is validated by shared/core/routes.ts, the same check the
// functions and the embedded stack run, so a file they refuse never reaches CloudFormation.
//
// Names: the endpoint and the inference components are `<prefix>-<name in routes.yml>`
// (shared/config.ts, sageMakerNames), the names the batcher invokes. Models and endpoint
// configurations get CloudFormation's generated names: any change to them replaces them, which a
// fixed name would make fail.
const { readFileSync } = require("node:fs");
const { join, resolve } = require("node:path");
const YAML = require("yaml");
const { buildRouteCatalog, readProfileFiles, deploymentSettings, SAGEMAKER_NAME_MAX_LENGTH } = require("../shared/core/routes.ts");
const { sageMakerNames } = require("../shared/config.ts");

/** The one production variant of each endpoint: inference components name it. */
const VARIANT_NAME = "AllTraffic";

/**
 * Target tracking metric: requests in flight or queued per copy, in 10-second datapoints. The
 * batcher keeps a copy full with long generations, so invocations per minute say little about a
 * continuous-batching copy's load (a full copy finishes few requests a minute); concurrency is its
 * load, and the high-resolution variant lets scale-out react within tens of seconds.
 */
const TARGET_METRIC = "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution";

/** Container image parameter (serverless.yml `params`) of each engine. */
const IMAGE_PARAMS = { "lmi-rolling": "lmiImageUri", "lmi-dynamic": "lmiImageUri", "vllm-openai": "vllmImageUri", tgi: "tgiImageUri" };

const join_ = (...parts) => ({ "Fn::Join": ["", parts] });
const partition = { Ref: "AWS::Partition" };
const region = { Ref: "AWS::Region" };
const account = { Ref: "AWS::AccountId" };

function readCatalog() {
  const raw = YAML.parse(readFileSync(join(__dirname, "routes.yml"), "utf8"));
  return buildRouteCatalog(readProfileFiles(raw, (reference) => readFileSync(resolve(__dirname, reference), "utf8")));
}

/** "batchline-h100" -> "BatchlineH100": CloudFormation logical ids are alphanumeric. */
function logicalId(name) {
  return name.split(/[^a-zA-Z0-9]+/).map((p) => p.charAt(0).toUpperCase() + p.slice(1)).join("");
}

/** Logical ids of the resources generated for an endpoint and for a component. */
const ids = {
  executionRole: (endpoint) => `${logicalId(endpoint)}ExecutionRole`,
  endpointConfig: (endpoint) => `${logicalId(endpoint)}EndpointConfig`,
  endpoint: (endpoint) => `${logicalId(endpoint)}Endpoint`,
  model: (component) => `${logicalId(component)}Model`,
  inferenceComponent: (component) => `${logicalId(component)}InferenceComponent`,
  scalableTarget: (component) => `${logicalId(component)}ScalableTarget`,
  targetTracking: (component) => `${logicalId(component)}TargetTrackingPolicy`,
  scaleFromZero: (component) => `${logicalId(component)}ScaleFromZeroPolicy`,
  noCapacityAlarm: (component) => `${logicalId(component)}NoCapacityAlarm`,
};

/** The deployed names, checked against SageMaker's length limit once the prefix is on. */
function deployedNames(prefix, catalog) {
  const names = sageMakerNames(prefix);
  const endpoints = new Map([...catalog.endpoints.keys()].map((e) => [e, names.endpoint(e)]));
  const components = new Map([...catalog.components.keys()].map((c) => [c, names.inferenceComponent(c)]));
  for (const [kind, map] of [["endpoint", endpoints], ["inference component", components]]) {
    for (const [name, deployed] of map) {
      if (deployed.length > SAGEMAKER_NAME_MAX_LENGTH) {
        throw new Error(`routes.yml: ${kind} ${name} is deployed as "${deployed}", ${deployed.length} characters; SageMaker allows ${SAGEMAKER_NAME_MAX_LENGTH}: shorten the name or the stage`);
      }
    }
  }
  return { endpoints, components };
}

/**
 * The ARNs of the deployed endpoints and inference components, for the batcher's role: it invokes
 * them and reads its components' copies, nothing else. SageMaker ARNs carry names in lower case.
 */
function sageMakerArns(prefix) {
  const { endpoints, components } = deployedNames(prefix, readCatalog());
  const arn = (type, name) => join_("arn:", partition, ":sagemaker:", region, ":", account, `:${type}/${name.toLowerCase()}`);
  return { endpoints: [...endpoints.values()].map((n) => arn("endpoint", n)), inferenceComponents: [...components.values()].map((n) => arn("inference-component", n)) };
}

/** `<account>.dkr.ecr.<region>.amazonaws.com/<repository>[:tag|@digest]` -> its repository ARN. */
function ecrRepositoryArn(image, param) {
  const match = /^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?\/([a-z0-9._\/-]+)(?::[\w.-]+|@sha256:[0-9a-f]{64})$/.exec(image);
  if (!match) throw new Error(`params.${param}: "${image}" is not an Amazon ECR image URI (<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>); SageMaker pulls from ECR`);
  const [, imageAccount, imageRegion, repository] = match;
  return join_("arn:", partition, `:ecr:${imageRegion}:${imageAccount}:repository/${repository}`);
}

/** `s3://bucket/key` -> { bucket, key }. */
function s3Location(uri) {
  const rest = uri.slice("s3://".length);
  const slash = rest.indexOf("/");
  return slash < 0 ? { bucket: rest, key: "" } : { bucket: rest.slice(0, slash), key: rest.slice(slash + 1) };
}

const isArchive = (uri) => uri.endsWith(".tar.gz");

/** The container's environment: what the engine needs from the component, then routes.yml's own. */
function containerEnvironment(component) {
  const { limits, model } = component;
  const maxModelLen = String(limits.max_prompt_tokens + limits.max_new_tokens);
  const derived =
    component.engine === "tgi"
      ? {
          // Hugging Face TGI DLC: SM_NUM_GPUS shards the model; the token limits are TGI's launcher options.
          ...(model.hf_model_id && { HF_MODEL_ID: model.hf_model_id }),
          SM_NUM_GPUS: String(component.accelerators_per_copy),
          // A continued generation sends its text so far as input (shared/core/continuation.ts):
          // any input that leaves room for a token; batchline holds callers to max_prompt_tokens.
          MAX_INPUT_TOKENS: String(limits.max_prompt_tokens + limits.max_new_tokens - 1),
          MAX_TOTAL_TOKENS: maxModelLen,
          MAX_BATCH_TOTAL_TOKENS: String(limits.token_budget),
          MAX_BATCH_SIZE: String(limits.max_sequences),
          MAX_CONCURRENT_REQUESTS: String(component.max_queue_length),
        }
      : component.engine === "vllm-openai"
      ? {
          // vLLM DLC (SageMaker variant): SM_VLLM_<ARG> is vLLM's --<arg>; weights from /opt/ml/model when given by S3.
          ...(model.hf_model_id && { SM_VLLM_MODEL: model.hf_model_id }),
          SM_VLLM_TENSOR_PARALLEL_SIZE: String(component.accelerators_per_copy),
          SM_VLLM_MAX_NUM_SEQS: String(limits.max_sequences),
          SM_VLLM_MAX_MODEL_LEN: maxModelLen,
        }
      : {
          // LMI (DJL Serving): OPTION_<KEY> is serving.properties' option.<key>, SERVING_<KEY> the server's <key>.
          ...(model.hf_model_id && { HF_MODEL_ID: model.hf_model_id }),
          OPTION_ROLLING_BATCH: component.engine === "lmi-rolling" ? "vllm" : "disable",
          OPTION_TENSOR_PARALLEL_DEGREE: String(component.accelerators_per_copy),
          ...(component.engine === "lmi-rolling" && { OPTION_MAX_ROLLING_BATCH_SIZE: String(limits.max_sequences) }),
          OPTION_MAX_MODEL_LEN: maxModelLen,
          SERVING_JOB_QUEUE_SIZE: String(component.max_queue_length),
        };
  return { ...derived, ...model.environment };
}

function modelData(model) {
  if (model.s3_uri === undefined) return {};
  if (isArchive(model.s3_uri)) return { ModelDataUrl: model.s3_uri };
  const prefix = model.s3_uri.endsWith("/") ? model.s3_uri : `${model.s3_uri}/`;
  return { ModelDataSource: { S3DataSource: { S3Uri: prefix, S3DataType: "S3Prefix", CompressionType: "None" } } };
}

/**
 * The role SageMaker assumes for an endpoint's models and instances: pull their images, write the
 * endpoint's and components' logs and metrics, and read S3 weights only where a component names
 * them. ecr:GetAuthorizationToken takes no resource but "*"; metrics are held to SageMaker's
 * namespaces.
 */
function executionRole(prefix, endpointName, deployedEndpoint, hosted, images, deployedComponent) {
  const logGroups = [`/aws/sagemaker/Endpoints/${deployedEndpoint}`, ...hosted.map((c) => `/aws/sagemaker/InferenceComponents/${deployedComponent(c.name)}`)];
  const logArn = (group, suffix) => join_("arn:", partition, ":logs:", region, ":", account, `:log-group:${group}${suffix}`);
  const statements = [
    {
      Effect: "Allow",
      Action: ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
      Resource: [...new Map(hosted.map((c) => [JSON.stringify(images.get(c.name).repositoryArn), images.get(c.name).repositoryArn])).values()],
    },
    { Effect: "Allow", Action: ["ecr:GetAuthorizationToken"], Resource: "*" },
    {
      Effect: "Allow",
      Action: ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
      Resource: logGroups.flatMap((group) => [logArn(group, ""), logArn(group, ":*")]),
    },
    {
      Effect: "Allow",
      Action: ["cloudwatch:PutMetricData"],
      Resource: "*",
      Condition: { StringLike: { "cloudwatch:namespace": ["/aws/sagemaker/*", "AWS/SageMaker"] } },
    },
  ];
  const s3 = hosted.flatMap((c) => (c.model.s3_uri === undefined ? [] : [c.model.s3_uri]));
  if (s3.length > 0) {
    const locations = s3.map((uri) => ({ ...s3Location(uri), archive: isArchive(uri) }));
    statements.push({
      Effect: "Allow",
      Action: ["s3:GetObject"],
      Resource: locations.map(({ bucket, key, archive }) => join_("arn:", partition, `:s3:::${bucket}/${archive ? key : `${key}*`}`)),
    });
    for (const bucket of new Set(locations.filter((l) => !l.archive).map((l) => l.bucket))) {
      const prefixes = locations.filter((l) => !l.archive && l.bucket === bucket).map((l) => `${l.key}*`);
      statements.push({ Effect: "Allow", Action: ["s3:ListBucket"], Resource: join_("arn:", partition, `:s3:::${bucket}`), Condition: { StringLike: { "s3:prefix": prefixes } } });
    }
  }
  return {
    Type: "AWS::IAM::Role",
    Properties: {
      AssumeRolePolicyDocument: {
        Version: "2012-10-17",
        Statement: [{ Effect: "Allow", Principal: { Service: ["sagemaker.amazonaws.com"] }, Action: ["sts:AssumeRole"] }],
      },
      Policies: [{ PolicyName: `${prefix}-${endpointName}-sagemaker`, PolicyDocument: { Version: "2012-10-17", Statement: statements } }],
    },
  };
}

/** Application Auto Scaling of a component's copies, and the alarm that wakes it from zero. */
function autoscaling(component, deployedComponent) {
  const scaling = component.autoscaling;
  const target = ids.scalableTarget(component.name);
  const stepPolicy = ids.scaleFromZero(component.name);
  return {
    [target]: {
      Type: "AWS::ApplicationAutoScaling::ScalableTarget",
      // The inference component must exist before it is registered.
      DependsOn: [ids.inferenceComponent(component.name)],
      Properties: {
        ServiceNamespace: "sagemaker",
        ResourceId: `inference-component/${deployedComponent}`,
        ScalableDimension: "sagemaker:inference-component:DesiredCopyCount",
        MinCapacity: scaling.min_copies,
        MaxCapacity: scaling.max_copies,
      },
    },
    [ids.targetTracking(component.name)]: {
      Type: "AWS::ApplicationAutoScaling::ScalingPolicy",
      Properties: {
        PolicyName: `${deployedComponent}-target-tracking`,
        PolicyType: "TargetTrackingScaling",
        ScalingTargetId: { Ref: target },
        TargetTrackingScalingPolicyConfiguration: {
          PredefinedMetricSpecification: { PredefinedMetricType: TARGET_METRIC },
          TargetValue: scaling.target_concurrent_requests_per_copy,
          ScaleOutCooldown: scaling.scale_out_cooldown_seconds,
          ScaleInCooldown: scaling.scale_in_cooldown_seconds,
        },
      },
    },
    // Target tracking cannot leave zero copies (no copy, no per-copy metric): a call that finds
    // none counts in NoCapacityInvocationFailures, whose alarm adds one copy. Settings of AWS's
    // "Scale an endpoint to zero instances" (endpoint-auto-scaling-zero-instances).
    [stepPolicy]: {
      Type: "AWS::ApplicationAutoScaling::ScalingPolicy",
      Properties: {
        PolicyName: `${deployedComponent}-scale-from-zero`,
        PolicyType: "StepScaling",
        ScalingTargetId: { Ref: target },
        StepScalingPolicyConfiguration: {
          AdjustmentType: "ChangeInCapacity",
          MetricAggregationType: "Maximum",
          Cooldown: 60,
          StepAdjustments: [{ MetricIntervalLowerBound: 0, ScalingAdjustment: 1 }],
        },
      },
    },
    [ids.noCapacityAlarm(component.name)]: {
      Type: "AWS::CloudWatch::Alarm",
      Properties: {
        AlarmName: `${deployedComponent}-no-capacity`,
        AlarmDescription: `Invocations of ${deployedComponent} that found no copy: add one (scale from zero).`,
        AlarmActions: [{ Ref: stepPolicy }],
        Namespace: "AWS/SageMaker",
        MetricName: "NoCapacityInvocationFailures",
        Dimensions: [{ Name: "InferenceComponentName", Value: deployedComponent }],
        Statistic: "Sum",
        Period: 60,
        EvaluationPeriods: 1,
        DatapointsToAlarm: 1,
        Threshold: 1,
        // At one refusal, as the emulator's alarm does (AWS's scale-to-zero blog; the guide says
        // GreaterThanThreshold): the batcher sends a component at zero one job per warming
        // recheck, so two refusals in a minute may never come (docs/autoscaling.md).
        ComparisonOperator: "GreaterThanOrEqualToThreshold",
      },
    },
  };
}

/**
 * The resources for a validated catalog. `images` maps each engine's image parameter to its URI
 * (serverless.yml `params`).
 */
function generate({ prefix, catalog, images: imageParams }) {
  const names = deployedNames(prefix, catalog);
  const deployedComponent = (name) => names.components.get(name);
  const components = [...catalog.components.values()];

  const missing = components.filter((c) => c.model === undefined).map((c) => c.name);
  if (missing.length > 0) {
    throw new Error(`routes.yml: components ${missing.join(", ")} name no model (model.hf_model_id or model.s3_uri): the deployed stack needs the weights each serves`);
  }
  const images = new Map();
  for (const component of components) {
    const param = IMAGE_PARAMS[component.engine];
    const uri = imageParams[param];
    if (typeof uri !== "string" || uri === "") throw new Error(`serverless.yml params: no ${param}, the container image of ${component.engine} components (${component.name})`);
    images.set(component.name, { uri, repositoryArn: ecrRepositoryArn(uri, param) });
  }

  const resources = {};
  const add = (id, resource) => {
    if (resources[id]) throw new Error(`routes.yml: two names give the CloudFormation logical id ${id}; rename one`);
    resources[id] = resource;
  };
  for (const [endpointName, endpoint] of catalog.endpoints) {
    const hosted = components.filter((c) => c.endpointName === endpointName);
    add(ids.executionRole(endpointName), executionRole(prefix, endpointName, names.endpoints.get(endpointName), hosted, images, deployedComponent));
    add(ids.endpointConfig(endpointName), {
      Type: "AWS::SageMaker::EndpointConfig",
      Properties: {
        // With inference components the role is the endpoint configuration's, and the variant names no model.
        ExecutionRoleArn: { "Fn::GetAtt": [ids.executionRole(endpointName), "Arn"] },
        ProductionVariants: [
          {
            VariantName: VARIANT_NAME,
            InstanceType: endpoint.instance_type,
            InitialInstanceCount: endpoint.instance_count,
            ManagedInstanceScaling: { Status: "ENABLED", MinInstanceCount: endpoint.min_instance_count, MaxInstanceCount: endpoint.max_instance_count },
            RoutingConfig: { RoutingStrategy: "LEAST_OUTSTANDING_REQUESTS" },
          },
        ],
      },
    });
    add(ids.endpoint(endpointName), {
      Type: "AWS::SageMaker::Endpoint",
      Properties: { EndpointName: names.endpoints.get(endpointName), EndpointConfigName: { "Fn::GetAtt": [ids.endpointConfig(endpointName), "EndpointConfigName"] } },
    });
  }
  for (const component of components) {
    const settings = deploymentSettings(component);
    add(ids.model(component.name), {
      Type: "AWS::SageMaker::Model",
      Properties: {
        ExecutionRoleArn: { "Fn::GetAtt": [ids.executionRole(component.endpointName), "Arn"] },
        PrimaryContainer: { Image: images.get(component.name).uri, Environment: containerEnvironment(component), ...modelData(component.model) },
      },
    });
    add(ids.inferenceComponent(component.name), {
      Type: "AWS::SageMaker::InferenceComponent",
      Properties: {
        InferenceComponentName: deployedComponent(component.name),
        EndpointName: { "Fn::GetAtt": [ids.endpoint(component.endpointName), "EndpointName"] },
        VariantName: VARIANT_NAME,
        Specification: {
          ModelName: { "Fn::GetAtt": [ids.model(component.name), "ModelName"] },
          ComputeResourceRequirements: {
            NumberOfAcceleratorDevicesRequired: component.accelerators_per_copy,
            MinMemoryRequiredInMb: settings.minMemoryMb,
          },
          StartupParameters: {
            ModelDataDownloadTimeoutInSeconds: settings.modelDataDownloadTimeoutSeconds,
            ContainerStartupHealthCheckTimeoutInSeconds: settings.containerStartupHealthCheckTimeoutSeconds,
          },
        },
        // Copies at creation. With autoscaling, Application Auto Scaling moves DesiredCopyCount from
        // there; a stack update that changes `copies` sets the count again.
        RuntimeConfig: { CopyCount: component.copies },
      },
    });
    if (component.autoscaling) {
      for (const [id, resource] of Object.entries(autoscaling(component, deployedComponent(component.name)))) add(id, resource);
    }
  }
  return { Resources: resources };
}

module.exports.resources = async ({ resolveVariable }) => {
  const catalog = readCatalog();
  const images = {};
  for (const param of new Set([...catalog.components.values()].map((c) => IMAGE_PARAMS[c.engine]))) images[param] = await resolveVariable(`param:${param}`);
  return generate({ prefix: await resolveVariable("self:custom.prefix"), catalog, images });
};

module.exports.generate = generate;
module.exports.sageMakerArns = sageMakerArns;
module.exports.logicalIds = ids;
module.exports.targetMetric = TARGET_METRIC;
