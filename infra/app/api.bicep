// The Function App on the Flex Consumption plan and its application settings. The app runs
// as the user-assigned identity, joins the integration subnet (so its outbound traffic leaves
// through the NAT gateway), and finds every secret in Key Vault: the settings contain only
// the vault URI and a Key Vault reference for the MongoDB connection string.

@description('Name of the Function App; it is also the first label of its default host name.')
param name string

@description('Name of the Flex Consumption plan.')
param planName string

@description('Azure region of the plan and the app.')
param location string

@description('Tags applied to the plan and the app.')
param tags object = {}

@description('Resource id of the user-assigned managed identity that the app runs as.')
param identityId string

@description('Client id of the same identity, for AZURE_CLIENT_ID and the storage and telemetry connections.')
param identityClientId string

@description('Name of the storage account that holds host state and the deployment package.')
param storageAccountName string

@description('Blob endpoint of that storage account, ending in a slash.')
param storageBlobEndpoint string

@description('Name of the blob container that holds the deployment package.')
param deploymentContainerName string

@description('Connection string of the Application Insights component.')
param applicationInsightsConnectionString string

@description('Resource id of the integration subnet, delegated to Microsoft.App/environments.')
param functionSubnetId string

@description('URI of the Key Vault that holds the secrets, ending in a slash.')
param keyVaultUri string

@description('Name of the MongoDB database (MONGODB_DATABASE).')
param mongodbDatabase string

@description('Base URL for links in e-mails (PUBLIC_BASE_URL). Empty uses the app\'s default https host name.')
param publicBaseUrl string = ''

@description('Product name shown in e-mails and tokens (SERVER_NAME).')
param serverName string

@description('Sender address of the e-mails (NOREPLY_EMAIL).')
param noreplyEmail string

@minValue(0)
@description('Seconds that a worker keeps secrets read from Key Vault before reading them again (SECRETS_CACHE_SECONDS).')
param secretsCacheSeconds int

@maxValue(1000)
@description('Maximum number of instances the plan scales out to.')
param maximumInstanceCount int = 100

@allowed([
  2048
  4096
])
@description('Memory of each instance, in MB.')
param instanceMemoryMB int = 2048

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: Zone redundancy is offered in only some Flex Consumption regions; the single-zone plan deploys in all of them.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: The API is public by design: mobile and web apps call it from anywhere, and its own tokens authorise each request.
  // checkov:skip=CKV_AZURE_17: Callers are end-user apps through the public SDKs, which present no client certificates.
  // checkov:skip=CKV_AZURE_212: Always-ready instances are billed around the clock; the plan scales from zero on demand instead.
  // checkov:skip=CKV_AZURE_213: The product has no health endpoint to probe, and the Flex Consumption platform replaces failed instances itself.
  name: name
  location: location
  // azd finds the app to deploy the "api" service of azure.yaml by this tag.
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Key Vault references resolve with this identity instead of a system-assigned one.
    keyVaultReferenceIdentity: identityId
    // NOTE: Flex Consumption has no "route all" switch (vnetRouteAllEnabled is deprecated for
    // this plan); with the subnet set, the app's outbound traffic goes through the subnet.
    virtualNetworkSubnetId: functionSubnetId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// Publishing with a user name and password (FTP or the SCM site) is off; azd and the Azure CLI
// deploy with a Microsoft Entra token instead.
// NOTE: these child resources are declared with `parent` rather than nested, because
// pycep-parser (which checkov and tests/test_infra.py use) keeps only the last of several
// nested children.
resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov runs its web-server configuration checks on every sites/config resource, but this
  // one contains only app settings, so the checked properties cannot appear in it.
  // checkov:skip=CKV_AZURE_13: App Service Authentication is not an app setting; the product's own tokens authorise each request.
  // checkov:skip=CKV_AZURE_63: HTTP logging is not an app setting; requests are logged to Application Insights.
  // checkov:skip=CKV_AZURE_65: Detailed error pages are not an app setting; invocation errors go to Application Insights.
  // checkov:skip=CKV_AZURE_66: Failed request tracing is not an app setting; failed invocations go to Application Insights.
  // checkov:skip=CKV_AZURE_80: The app runs Python, not .NET Framework.
  // checkov:skip=CKV_AZURE_88: Azure Files content shares do not exist on the Flex Consumption plan, which runs from a blob package.
  // checkov:skip=CKV_AZURE_222: Public network access is a site property, set and justified on the Function App above.
  parent: functionApp
  name: 'appsettings'
  properties: {
    // The Functions host reaches its storage with the managed identity, not a connection string.
    AzureWebJobsStorage__accountName: storageAccountName
    AzureWebJobsStorage__credential: 'managedidentity'
    AzureWebJobsStorage__clientId: identityClientId
    APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsightsConnectionString
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'

    // Settings that cosync/settings.py reads.
    // NOTE: the vault firewall admits only the integration subnet, so the platform must resolve
    // this reference through the subnet; that path has not been tried on a live deployment.
    MONGODB_URI: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/mongodb-uri/)'
    MONGODB_DATABASE: mongodbDatabase
    KEY_VAULT_URL: keyVaultUri
    PUBLIC_BASE_URL: empty(publicBaseUrl) ? 'https://${functionApp.properties.defaultHostName}' : publicBaseUrl
    SERVER_NAME: serverName
    NOREPLY_EMAIL: noreplyEmail
    SECRETS_CACHE_SECONDS: string(secretsCacheSeconds)
    // DefaultAzureCredential picks the user-assigned identity by this client id.
    AZURE_CLIENT_ID: identityClientId
  }
}

output name string = functionApp.name
output baseUrl string = 'https://${functionApp.properties.defaultHostName}'
